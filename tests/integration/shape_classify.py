#!/usr/bin/env python3
"""What an on-path observer learns from a streamed completion's traffic shape.

Used by shape_netns.test.mjs. Reads a pcap of the client-relay link and a
list of traces (time windows, one completion each, with its topic and the
shaping mode), rebuilds the TLS records the relay sent to the client (sizes
and arrival times: everything TLS 1.3 leaves visible), turns each trace into
Whisper-Leak-style features and measures how well a classifier tells the two
topics apart: logistic regression, repeated stratified 5-fold cross-
validation with fixed seeds, ROC AUC per mode.

usage: shape_classify.py JOB.json   (prints a JSON result on stdout)
JOB = {"pcap": path, "relay_port": 9338,
       "ports": {"off": client port, "on": client port},
       "traces": [{"mode": "off"|"on", "topic": "a"|"b",
                   "start_ms": wall ms, "end_ms": wall ms}, ...]}
"""
import json
import struct
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CONTROL_MAX = 80  # PINGs, ACKs, WINDOW_UPDATEs: not part of any answer


def packets(path):
    """(time s, src ip, sport, dst ip, dport, seq, flags, payload) of TCP/IPv4."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    else:
        endian = ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        ts, tfrac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        t = ts + tfrac / (1e9 if nano else 1e6)
        if linktype == 1:  # Ethernet
            if len(pkt) < 14 or struct.unpack(">H", pkt[12:14])[0] != 0x0800:
                continue
            ip = pkt[14:]
        elif linktype == 113:  # Linux cooked
            ip = pkt[16:]
        elif linktype == 276:  # Linux cooked v2
            ip = pkt[20:]
        else:
            ip = pkt
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        yield t, ip[12:16], sport, ip[16:20], dport, seq, flags, tcp[doff:]


def tls_records(path, relay_port, to_client=True):
    """Every TLS record the relay sent to a client (or, to_client False, a
    client sent to the relay): (time s, length, client port)."""
    flows = {}
    out = []
    for t, src, sport, dst, dport, seq, flags, payload in packets(path):
        if (sport if to_client else dport) != relay_port:
            continue
        cport = dport if to_client else sport
        key = (src, sport, dst, dport)
        fl = flows.get(key)
        if flags & 0x02:  # SYN(-ACK): the stream starts after it
            flows[key] = {"next": (seq + 1) & 0xFFFFFFFF, "buf": b"", "ok": True}
            continue
        if fl is None or not fl["ok"] or not payload:
            continue
        d = (seq - fl["next"]) & 0xFFFFFFFF
        if d >= 0x80000000:  # retransmission (partly) before 'next'
            skip = (fl["next"] - seq) & 0xFFFFFFFF
            if skip >= len(payload):
                continue
            payload = payload[skip:]
        elif d != 0:  # a hole in the capture: this flow is lost
            fl["ok"] = False
            continue
        fl["next"] = (fl["next"] + len(payload)) & 0xFFFFFFFF
        buf = fl["buf"] + payload
        while len(buf) >= 5:
            n = struct.unpack(">H", buf[3:5])[0]
            if len(buf) < 5 + n:
                break
            out.append((t, 5 + n, cport))
            buf = buf[5 + n:]
        fl["buf"] = buf
    return out


def features(recs):
    sizes = np.array([r[1] for r in recs], dtype=float)
    times = np.array([r[0] for r in recs], dtype=float)
    if len(sizes) == 0:
        return [0.0] * 12
    gaps = np.diff(times) * 1000 if len(times) > 1 else np.zeros(1)
    return [
        len(sizes), sizes.sum(), (times[-1] - times[0]) * 1000,
        sizes.mean(), sizes.std(), sizes.min(), sizes.max(),
        np.median(sizes), gaps.mean(), gaps.std(), np.median(gaps),
        gaps.max(),
    ]


def main():
    job = json.load(open(sys.argv[1]))
    port = job.get("relay_port", 9338)
    allrecs = [r for r in tls_records(job["pcap"], port) if r[1] > CONTROL_MAX]
    upstream = [r for r in tls_records(job["pcap"], port, False)
                if r[1] > CONTROL_MAX]
    res = {"records": len(allrecs)}
    for mode in ("off", "on"):
        recs = [r for r in allrecs if r[2] == job["ports"][mode]]
        times = np.array([r[0] for r in recs])
        X, y, counts = [], [], []
        for tr in job["traces"]:
            if tr["mode"] != mode:
                continue
            lo = np.searchsorted(times, tr["start_ms"] / 1000.0)
            hi = np.searchsorted(times, tr["end_ms"] / 1000.0)
            X.append(features(recs[lo:hi]))
            y.append(1 if tr["topic"] == "a" else 0)
            counts.append(hi - lo)
        X, y = np.array(X), np.array(y)
        # Requests: the first record each trace sends to the relay.
        ups = [r for r in upstream if r[2] == job["ports"][mode]]
        utimes = np.array([r[0] for r in ups])
        req = []
        for tr in job["traces"]:
            if tr["mode"] == mode:
                i = np.searchsorted(utimes, tr["start_ms"] / 1000.0)
                if i < len(ups) and ups[i][0] <= tr["end_ms"] / 1000.0:
                    req.append(ups[i][1])
        sizes = [r[1] for r in recs]
        cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=10, random_state=13)
        clf = make_pipeline(StandardScaler(),
                            LogisticRegression(max_iter=2000, C=1.0))
        auc = cross_val_score(clf, X, y, cv=cv, scoring="roc_auc")
        res[mode] = {
            "auc": float(auc.mean()), "auc_std": float(auc.std()),
            "traces": int(len(y)), "records_per_trace_min": int(min(counts)),
            "records_per_trace_mean": float(np.mean(counts)),
            # Share of answer records of the most common size.
            "modal_record_share": float(
                max(sizes.count(v) for v in set(sizes)) / len(sizes)),
            "request_record_sizes": sorted(set(req)),
            "request_modal_share": float(
                max(req.count(v) for v in set(req)) / len(req)),
            "mean_record_bytes": {
                t: float(np.mean([x[3] for x, l in zip(X, y) if l == (t == "a")]))
                for t in ("a", "b")},
        }
    json.dump(res, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

# sealmesh — one GNU Makefile. Knobs: V=1 DEBUG=1 SANITIZE=address,undefined WERROR=1 BUILD=dir
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:

BUILD    ?= build
CC       ?= cc
FUZZ_CC  ?= clang
PKGS     := libuv openssl libnghttp2 libsodium libprotobuf-c libcjson \
            tss2-esys tss2-tctildr tss2-mu tss2-rc libseccomp
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN     := -std=c11 -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
            -Wvla -Wimplicit-fallthrough -Wno-unused-parameter
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CPPFLAGS += -D_GNU_SOURCE -DSM_VERSION='"$(VERSION)"' -Isrc -I$(BUILD)/gen -I$(LLHTTP_INC) \
            $(shell pkg-config --cflags $(PKGS))
CFLAGS   ?= -O2 -g
CFLAGS   += $(WARN) $(HARDEN) -MMD -MP
LDFLAGS  += -pie -Wl,-z,relro,-z,now
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
TEST_LIBS := $(shell pkg-config --libs cmocka)

ifdef DEBUG
CFLAGS   += -O0 -DSM_DEBUG
endif
ifdef WERROR
CFLAGS   += -Werror
endif
ifdef SANITIZE
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif
ifeq ($(V),1)
Q :=
else
Q := @
endif

# Generated protobuf-c code: never edited by hand, lives in $(BUILD)/gen.
PROTOS    := $(wildcard proto/*.proto)
PROTO_C   := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_H   := $(PROTO_C:.c=.h)

LIB_SRC   := $(filter-out src/main.c,$(wildcard src/*/*.c))
LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(PROTO_C:.c=.o) \
             $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
LIB       := $(BUILD)/libsealmesh.a
BIN       := $(BUILD)/sealmesh
# Test builds compile the product once more with SM_TEST_BUILD for test-only hooks.
TBIN      := $(BUILD)/test/sealmesh
TLIB_OBJ  := $(patsubst %.c,$(BUILD)/test/%.o,$(LIB_SRC) src/main.c)

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TUTIL_SRC := $(wildcard tests/unit/util_*.c)
FIX_SRC   := $(wildcard tests/fixtures/*.c)
FIX_BIN   := $(patsubst tests/fixtures/%.c,$(BUILD)/fixtures/%,$(FIX_SRC))
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all test unit integration check fuzz bench format format-check clean demo deps install uninstall sim
all: $(BIN) $(TBIN) $(FIX_BIN) $(BENCH_BIN)

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	$(Q)protoc-c --c_out=$(BUILD)/gen $<

$(BUILD)/gen/proto/%.pb-c.o: $(BUILD)/gen/proto/%.pb-c.c
	$(Q)$(CC) $(CPPFLAGS) -O2 -g -fPIE $(if $(SANITIZE),-fsanitize=$(SANITIZE)) -c -o $@ $<

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -I$(LLHTTP_INC) -O2 -g -fPIE $(if $(SANITIZE),-fsanitize=$(SANITIZE)) -c -o $@ $<

# The web console's files, compiled in as byte arrays (scripts/embed.sh).
WEBUI_SRC := $(addprefix src/http/webui/,index.html app.js app.css favicon.svg)
WEBUI_H   := $(BUILD)/gen/http/webui_assets.h
$(WEBUI_H): $(WEBUI_SRC) scripts/embed.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed.sh $@ $(WEBUI_SRC)
$(BUILD)/src/http/webui.o $(BUILD)/test/src/http/webui.o $(BUILD)/fuzz/obj/src/http/webui.o: $(WEBUI_H)

$(BUILD)/src/%.o: src/%.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/test/src/%.o: src/%.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -DSM_TEST_BUILD $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TBIN): $(TLIB_OBJ) $(PROTO_C:.c=.o) $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(TUTIL_SRC) $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< $(TUTIL_SRC) $(LIB) $(LDLIBS) $(TEST_LIBS)

$(BUILD)/fixtures/%: tests/fixtures/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# libFuzzer targets: the library is built once more with clang and coverage
# instrumentation (fuzzer-no-link); each target links against it.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -D_GNU_SOURCE -DSM_FUZZ \
               -DSM_VERSION='"$(VERSION)"' -Isrc -I$(BUILD)/gen -I$(LLHTTP_INC) \
               $(shell pkg-config --cflags $(PKGS))
FUZZ_OBJ    := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRC)) \
               $(patsubst $(BUILD)/gen/%.c,$(BUILD)/fuzz/obj/gen/%.o,$(PROTO_C)) \
               $(BUILD)/fuzz/obj/llhttp/llhttp.o $(BUILD)/fuzz/obj/llhttp/api.o $(BUILD)/fuzz/obj/llhttp/http.o
FUZZ_LIB    := $(BUILD)/fuzz/libsealmesh-fuzz.a
$(BUILD)/fuzz/obj/src/%.o: src/%.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(BUILD)/fuzz/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(BUILD)/fuzz/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS)

unit: $(UNIT_BIN)
test: all $(UNIT_BIN)
	$(Q)BUILD=$(BUILD) scripts/run-tests.sh

check:
	$(MAKE) BUILD=build/san SANITIZE=address,undefined DEBUG=1 test

FUZZ_SECONDS ?= 20
fuzz: $(FUZZ_BIN)
	$(Q)BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-fuzz.sh

bench: all
	$(Q)BUILD=$(BUILD) bench/run.sh

# Gossip simulation (bench/sim.c): 100, 1,000 and 10,000 nodes.
sim: $(BUILD)/bench/sim
	$(Q)$(BUILD)/bench/sim $(SIM_ARGS)

demo: all
	$(Q)BUILD=$(BUILD) scripts/demo.sh

FORMAT_SRC = $(shell git ls-files -co --exclude-standard '*.c' '*.h' | grep -v '^build/')
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRC)

# make install [PREFIX=/usr/local] [DESTDIR=staging]: the binary, sealmesh(1),
# the systemd unit (with the tpm.conf drop-in as an example) and, unless one
# exists, /etc/sealmesh/sealmesh.conf (mode 0600).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/sealmesh
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DOCDIR)/examples
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/sealmesh
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/sealmesh
	install -m 0644 doc/sealmesh.1 $(DESTDIR)$(MANDIR)/man1/sealmesh.1
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		-e 's|@DOCDIR@|$(DOCDIR)|g' dist/sealmesh.service >$(DESTDIR)$(UNITDIR)/sealmesh.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sealmesh.service
	install -m 0644 dist/tpm.conf dist/sealmesh.conf $(DESTDIR)$(DOCDIR)/examples/
	[ -e $(DESTDIR)$(SYSCONFDIR)/sealmesh/sealmesh.conf ] || \
		install -m 0600 dist/sealmesh.conf $(DESTDIR)$(SYSCONFDIR)/sealmesh/sealmesh.conf

# Leaves $(SYSCONFDIR)/sealmesh (an operator's config) in place.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sealmesh $(DESTDIR)$(MANDIR)/man1/sealmesh.1 \
		$(DESTDIR)$(UNITDIR)/sealmesh.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

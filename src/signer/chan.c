#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "signer/chan.h"

int
chan_read(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t got = read(fd, p, n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return SM_ERR_CLOSED;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

int
chan_write(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SM_ERR_CLOSED;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

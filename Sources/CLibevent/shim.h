#ifndef CASEBRIDGE_CLIBEVENT_SHIM_H
#define CASEBRIDGE_CLIBEVENT_SHIM_H
// System headers first: libevent's event-config.h defines _GNU_SOURCE, which would give fd_set and
// friends other member names in this module than in Glibc and COpenSSL, and a clean build then
// fails with "'__fds_bits' from module 'COpenSSL' is not present in definition of 'fd_set'".
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <sys/eventfd.h>
#include <unistd.h>

// evtimer_add is a macro over event_add.
static inline int cb_evtimer_add(struct event *ev, const struct timeval *tv) { return event_add(ev, tv); }
// An event loop's own wake-up counter: other threads write it outside any lock (event_active would
// write libevent's while holding the base's lock, which the woken loop then waits for).
static inline int cb_wake_fd_new(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
static inline void cb_wake_fd_signal(int fd) { uint64_t one = 1; (void)!write(fd, &one, sizeof one); }
static inline void cb_wake_fd_drain(int fd) { uint64_t count; (void)!read(fd, &count, sizeof count); }
// evutil_socket_geterror is a function-like macro; read the pending socket error directly.
static inline int cb_socket_error(evutil_socket_t fd) { int e = 0; socklen_t n = sizeof e; if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &n) != 0) return errno; return e != 0 ? e : errno; }
// BEV_EVENT_* flags are macros; bundle the test so Swift need not mirror the bit values.
static inline int cb_bev_is_connected(short events) { return (events & BEV_EVENT_CONNECTED) != 0; }
static inline int cb_bev_is_error(short events) { return (events & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) != 0; }
static inline int cb_bev_is_eof(short events) { return (events & BEV_EVENT_EOF) != 0; }
// setsockopt takes a void pointer; keep the int option plumbing on the C side.
static inline int cb_set_nodelay(evutil_socket_t fd) { int one = 1; return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
// A fixed kernel send buffer bounds what a peer that stops reading holds in the kernel for us.
static inline int cb_set_send_buffer(evutil_socket_t fd, int bytes) { return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes); }
// glibc's malloc_trim lives in <malloc.h>, which Glibc's Swift module does not export: it gives
// freed arena memory back to the system after a burst of large buffers.
#include <malloc.h>
static inline int cb_malloc_trim(void) { return malloc_trim(0); }
#endif

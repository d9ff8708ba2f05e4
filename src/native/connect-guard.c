/*
 * connect-guard: loaded (LD_PRELOAD) into a pulled live stream's decoder process, it lets the
 * process's sockets reach only the addresses the service checked for this stream, so that what
 * libav decides to open on its own (an RTSP server's redirect, an SRT or RTP peer named by the
 * source, a host name it would resolve) cannot reach anything else, whatever the protocol.
 *
 * HALTINGVT_CONNECT_ALLOW: comma-separated entries `address` (any port) or `address/port`, IPv4
 * or IPv6. connect(), sendto() and sendmsg() to any other IPv4 or IPv6 address fail with EACCES
 * (an IPv4-mapped IPv6 address is judged as the IPv4 address it carries). Unix sockets and sends
 * on connected sockets pass. Without the variable, everything is refused: the guard fails closed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ALLOWED 16

struct allowed {
  int family;
  unsigned char addr[16];
  unsigned short port; /* host order; 0: any */
};

static struct allowed allowed[MAX_ALLOWED];
static int allowed_count = -1;

static void load_allowed(void) {
  allowed_count = 0;
  const char *env = getenv("HALTINGVT_CONNECT_ALLOW");
  if (!env) return;
  char copy[1024];
  strncpy(copy, env, sizeof copy - 1);
  copy[sizeof copy - 1] = 0;
  char *save = NULL;
  for (char *entry = strtok_r(copy, ",", &save); entry && allowed_count < MAX_ALLOWED; entry = strtok_r(NULL, ",", &save)) {
    struct allowed a = {0};
    char *slash = strchr(entry, '/');
    if (slash) {
      *slash = 0;
      a.port = (unsigned short)atoi(slash + 1);
    }
    if (inet_pton(AF_INET, entry, a.addr) == 1) a.family = AF_INET;
    else if (inet_pton(AF_INET6, entry, a.addr) == 1) a.family = AF_INET6;
    else continue;
    allowed[allowed_count++] = a;
  }
}

/* 1 when `sa` may be reached; non-IP families always may. */
static int permitted(const struct sockaddr *sa, socklen_t len) {
  if (!sa) return 1;
  if (allowed_count < 0) load_allowed();
  int family;
  const unsigned char *addr;
  unsigned short port;
  unsigned char mapped[4];
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    family = AF_INET;
    addr = (const unsigned char *)&in->sin_addr;
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      memcpy(mapped, &in6->sin6_addr.s6_addr[12], 4);
      family = AF_INET;
      addr = mapped;
    } else {
      family = AF_INET6;
      addr = in6->sin6_addr.s6_addr;
    }
  } else if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
    return 0; /* an IP address too short to read: refused */
  } else {
    return 1;
  }
  for (int i = 0; i < allowed_count; i++) {
    const struct allowed *a = &allowed[i];
    if (a->family == family && memcmp(a->addr, addr, family == AF_INET ? 4 : 16) == 0 && (a->port == 0 || a->port == port)) return 1;
  }
  return 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
  if (!permitted(addr, len)) {
    errno = EACCES;
    return -1;
  }
  return real(fd, addr, len);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len) {
  static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
  if (!real) real = (ssize_t(*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "sendto");
  if (addr && !permitted(addr, len)) {
    errno = EACCES;
    return -1;
  }
  return real(fd, buf, n, flags, addr, len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  static ssize_t (*real)(int, const struct msghdr *, int);
  if (!real) real = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
  if (msg && msg->msg_name && !permitted((const struct sockaddr *)msg->msg_name, msg->msg_namelen)) {
    errno = EACCES;
    return -1;
  }
  return real(fd, msg, flags);
}

/* test_addr.c - rs_addr_is_loopback: what both servers exempt from AE-title and per-address rules. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "t.h"
#include "util/addr.h"

static int v4(const char *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, s, &a.sin_addr);
    return rs_addr_is_loopback((const struct sockaddr *)&a);
}

static int v6(const char *s)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, s, &a.sin6_addr);
    return rs_addr_is_loopback((const struct sockaddr *)&a);
}

int main(void)
{
    CHECK(v4("127.0.0.1") && v4("127.255.3.4"));
    CHECK(!v4("10.0.0.1") && !v4("128.0.0.1") && !v4("0.0.0.0"));
    CHECK(v6("::1") && v6("::ffff:127.0.0.1") && v6("::ffff:127.9.9.9"));
    CHECK(!v6("::2") && !v6("::ffff:10.1.2.3") && !v6("fe80::1") && !v6("::127.0.0.1"));
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK(!rs_addr_is_loopback(&other) && !rs_addr_is_loopback(NULL));
    return t_done();
}

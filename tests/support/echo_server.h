/* A loopback echo backend for tests: echoes every byte, half-closes after the client does, and
 * counts connections accepted and the most open at once. Thread per connection. */
#ifndef PP_TEST_ECHO_SERVER_H
#define PP_TEST_ECHO_SERVER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct echo_server echo_server;

/* Starts listening on 127.0.0.1 (port 0 picks one). NULL on failure. */
echo_server *echo_server_start(int port);
/* The same server speaking HTTP/1.1 instead of echoing: each bodiless request gets a keep-alive
 * response with body "ok", status NNN for a target "/status/NNN", else 200; a target "/echo..."
 * gets the request head it received as the body, and a field X-Backend-Port: its port. */
echo_server *echo_server_start_http(int port);
int echo_server_port(const echo_server *s);
long echo_server_accepted(const echo_server *s);
int echo_server_open_now(const echo_server *s);
int echo_server_open_max(const echo_server *s);
/* Stops accepting, closes every connection, waits for its threads, frees. */
void echo_server_stop(echo_server *s);

/* Client helpers. All waits are bounded (timeout_ms). */
int test_dial(int port);                                       /* fd or -1 */
int test_write_all(int fd, const void *buf, long len);         /* 0 or -1 */
long test_read_exact(int fd, void *buf, long len, int timeout_ms); /* bytes read */
/* 1 if the peer closed (EOF or reset) within timeout_ms, 0 if not. */
int test_wait_eof(int fd, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif

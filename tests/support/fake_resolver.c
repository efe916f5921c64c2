/* A getaddrinfo() for tests, loaded with LD_PRELOAD: names ending in ".pp-test" are answered
 * from the file named by $PP_FAKE_HOSTS, read anew on every call ("name ip ip ..." per line),
 * so a test can change what a name resolves to while a proxy runs. Every other name goes to
 * the real resolver. Nodes are allocated the way glibc's freeaddrinfo frees them (one block
 * per node, no canonical name). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static struct addrinfo *node(int family, const char *ip, int port) {
    struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in6));
    struct sockaddr *sa = (struct sockaddr *)(ai + 1);
    if (!ai) return NULL;
    ai->ai_family = family;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_protocol = IPPROTO_TCP;
    ai->ai_addr = sa;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &in->sin_addr);
        ai->ai_addrlen = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &in6->sin6_addr);
        ai->ai_addrlen = sizeof *in6;
    }
    return ai;
}

__attribute__((visibility("default"))) int getaddrinfo(const char *name, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static gai_fn real;
    size_t len = name ? strlen(name) : 0;
    const char *path = getenv("PP_FAKE_HOSTS");
    static const size_t kLine = 1 << 16; /* answers of a few thousand addresses */
    char *line;
    FILE *f;
    if (!real) real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    if (len < 8 || strcmp(name + len - 8, ".pp-test") != 0 || !path) return real(name, service, hints, res);
    *res = NULL;
    f = fopen(path, "r");
    if (!f) return EAI_AGAIN;
    line = malloc(kLine);
    if (!line) {
        fclose(f);
        return EAI_MEMORY;
    }
    while (fgets(line, (int)kLine, f)) {
        char *save = NULL, *tok = strtok_r(line, " \t\n", &save);
        struct addrinfo **tail = res;
        if (!tok || strcmp(tok, name) != 0) continue;
        while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL) {
            struct addrinfo *ai = node(strchr(tok, ':') ? AF_INET6 : AF_INET, tok, service ? atoi(service) : 0);
            if (!ai) break;
            *tail = ai;
            tail = &ai->ai_next;
        }
        break;
    }
    fclose(f);
    free(line);
    return *res ? 0 : EAI_NONAME;
}

/* libFuzzer target: the option table and the config-file reader, through the public API.
 * Input: "name\0value" for pp_config_set (a value that was accepted must read back and be
 * accepted again), and the whole input as a config file. Every refusal must say why. */
#include <poolproxy.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void need_reason(int rc, const char *what) {
    if (rc != 0 && (pp_last_error() == NULL || pp_last_error()[0] == '\0')) {
        fprintf(stderr, "fuzz_config: %s refused (%s) without a reason\n", what, pp_err_name(rc));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pp_config *cfg;
    char *text = malloc(size + 2), path[] = "/tmp/pp-fuzz-config-XXXXXX", got[4096];
    const char *name, *value;
    int rc, fd;
    if (text == NULL || pp_config_new(&cfg) != 0) abort();
    memcpy(text, data, size);
    text[size] = text[size + 1] = '\0';
    name = text;
    value = text + strlen(text) + 1;
    if (value > text + size) value = text + size;
    rc = pp_config_set(cfg, name, value);
    need_reason(rc, "pp_config_set");
    if (rc == 0 && strcmp(name, "backend") != 0) {
        if (pp_config_get(cfg, name, got, sizeof got) == 0) {
            rc = pp_config_set(cfg, name, got);
            if (rc != 0) {
                fprintf(stderr, "fuzz_config: %s = '%s' was accepted, reads back as '%s', which is refused: %s\n",
                        name, value, got, pp_last_error());
                abort();
            }
        }
    }
    pp_config_free(cfg);

    fd = mkstemp(path);
    if (fd < 0) abort();
    if (write(fd, data, size) != (ssize_t)size) abort();
    close(fd);
    if (pp_config_new(&cfg) != 0) abort();
    need_reason(pp_config_load_file(cfg, path), "pp_config_load_file");
    pp_config_free(cfg);
    unlink(path);
    free(text);
    return 0;
}

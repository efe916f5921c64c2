/* Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without libFuzzer, so that
 * any compiler and every sanitizer build runs the corpus as a regression test.
 *   fuzz_NAME_replay DIR_OR_FILE...    exits 1 if nothing was replayed */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long replayed;

static void replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    long len;
    uint8_t *buf;
    if (f == NULL) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf == NULL || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) { perror(path); exit(1); }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    replayed++;
}

int main(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { perror(argv[i]); return 1; }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                char path[4096];
                if (e->d_name[0] == '.') continue;
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                replay_file(path);
            }
            if (d) closedir(d);
        } else {
            replay_file(argv[i]);
        }
    }
    printf("replayed %ld inputs\n", replayed);
    return replayed > 0 ? 0 : 1;
}

/* The example application's service program (runner/dev/example-app copies it into each service). It stands in
 * for a real service's code: the Dockerfile compiles it with SERVICE and VERSION from version.h, runs its
 * self-test, and ships the static executable. Run without arguments it prints what it is; moto never starts it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "version.h"

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit. */
static uint32_t crc32(const unsigned char *bytes, size_t count) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < count; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--self-test") == 0) {
        /* The check value of CRC-32 is that of the nine bytes "123456789". */
        uint32_t check = crc32((const unsigned char *)"123456789", 9);
        if (check != 0xCBF43926u) {
            fprintf(stderr, "%s: self-test failed: crc32 is %08x, not cbf43926\n", SERVICE, (unsigned)check);
            return 1;
        }
        printf("%s %s: self-test passed\n", SERVICE, VERSION);
        return 0;
    }
    printf("{\"service\": \"%s\", \"version\": \"%s\", \"crc32\": \"%08x\"}\n", SERVICE, VERSION,
           (unsigned)crc32((const unsigned char *)VERSION, strlen(VERSION)));
    return 0;
}

/* Minimal freestanding runtime: the memory functions the compiler may call,
 * console output and region access helpers. */
#include "opml.h"

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int value, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)value;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

void opml_puts(int fd, const char *s) { opml_write(fd, s, strlen(s)); }

void opml_put_u32(int fd, uint32_t value) {
    char digits[11];
    int i = 10;
    digits[i] = 0;
    do {
        digits[--i] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    opml_puts(fd, digits + i);
}

uint32_t opml_load_be32(const void *p) { return *(const uint32_t *)p; /* MIPS is big-endian */ }

void opml_store_be32(void *p, uint32_t value) { *(uint32_t *)p = value; }

const uint8_t *opml_input(uint32_t *length) {
    *length = opml_load_be32((const void *)OPML_INPUT_ADDR);
    return (const uint8_t *)(OPML_INPUT_ADDR + 4);
}

const uint8_t *opml_model(uint32_t *length) {
    *length = opml_load_be32((const void *)OPML_MODEL_ADDR);
    return (const uint8_t *)(OPML_MODEL_ADDR + 4);
}

uint8_t *opml_output_buffer(void) { return (uint8_t *)(OPML_OUTPUT_ADDR + 4); }

void opml_set_output_length(uint32_t length) { opml_store_be32((void *)OPML_OUTPUT_ADDR, length); }

void *opml_alloc(size_t bytes) {
    static uint32_t heap_end;
    if (heap_end == 0) heap_end = (uint32_t)opml_syscall3(SYS_BRK, 0, 0, 0, NULL);
    uint32_t start = (heap_end + 7u) & ~7u;
    uint32_t end = start + bytes;
    if (end < start) return NULL;
    if ((uint32_t)opml_syscall3(SYS_BRK, (int)end, 0, 0, NULL) != end) return NULL;
    heap_end = end;
    return (void *)start;
}

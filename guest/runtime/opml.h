/* The guest side of the VM contract: address-space regions and syscalls.
 * Must match opml/vm/layout.py and docs/vm-spec.md. */
#ifndef OPML_H
#define OPML_H

#include "types.h"

/* Regions: each holds a big-endian u32 byte length, then the bytes. */
#define OPML_INPUT_ADDR 0x10000000u
#define OPML_OUTPUT_ADDR 0x20000000u
#define OPML_MODEL_ADDR 0x40000000u
#define OPML_MAX_INPUT_BYTES (0x10000000u - 4u)
/* The largest output a result can carry (InferenceRegistry.MAX_OUTPUT_BYTES); a longer length makes the
 * result "output too large" and a nonzero byte after the output makes it "malformed output". */
#define OPML_MAX_OUTPUT_BYTES 0x10000u
/* The largest value a region holds (a node run's operands and output, docs/two-phase.md): a node's value may be
 * longer than a result's output, since only a claim's last value is ever a result. */
#define OPML_MAX_VALUE_BYTES (0x10000000u - 4u)
#define OPML_MAX_MODEL_BYTES (0x40000000u - 4u)

/* A node run of a graph model (docs/two-phase.md) adds a node header and up to four operand regions,
 * each 2^28 bytes holding a u32 length then bytes, and starts its heap at 0xC0000000. */
#define OPML_NODE_HEADER_ADDR 0x30000000u
#define OPML_OPERANDS_ADDR 0x80000000u
#define OPML_REGION_BYTES 0x10000000u
#define OPML_MAX_OPERANDS 4u
#define OPML_MAX_REGION_DATA_BYTES (OPML_REGION_BYTES - 4u)

#define SYS_EXIT 4001
#define SYS_WRITE 4004
#define SYS_BRK 4045
#define SYS_MMAP 4090
#define SYS_EXIT_GROUP 4246

/* Raw syscall: number in v0, arguments in a0-a2; result in v0, error flag in a3. */
static inline int opml_syscall3(int number, int a0, int a1, int a2, int *failed) {
    register int v0 __asm__("$2") = number;
    register int r4 __asm__("$4") = a0;
    register int r5 __asm__("$5") = a1;
    register int r6 __asm__("$6") = a2;
    register int r7 __asm__("$7");
    __asm__ volatile("syscall" : "+r"(v0), "=r"(r7) : "r"(r4), "r"(r5), "r"(r6) : "memory");
    if (failed) *failed = r7;
    return v0;
}

static inline __attribute__((noreturn)) void opml_exit(int code) {
    opml_syscall3(SYS_EXIT_GROUP, code, 0, 0, NULL);
    __builtin_unreachable();
}

static inline int opml_write(int fd, const void *buffer, size_t count) {
    return opml_syscall3(SYS_WRITE, fd, (int)buffer, (int)count, NULL);
}

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Console output (logged off-chain only). */
void opml_puts(int fd, const char *s);
void opml_put_u32(int fd, uint32_t value);

/* Region access. */
uint32_t opml_load_be32(const void *p);
void opml_store_be32(void *p, uint32_t value);
const uint8_t *opml_input(uint32_t *length);
const uint8_t *opml_model(uint32_t *length);
uint8_t *opml_output_buffer(void);
void opml_set_output_length(uint32_t length);

/* Heap: a bump allocator over brk. Returns NULL when the heap is exhausted. */
void *opml_alloc(size_t bytes);

#endif

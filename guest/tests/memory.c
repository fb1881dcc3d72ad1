/* Loads and stores of every width, unaligned lwl/lwr/swl/swr, ll/sc, sync. */
#include "check.h"

static uint8_t buffer[16] __attribute__((aligned(4))) = {
    0x01, 0x82, 0x03, 0x84, 0x85, 0x06, 0x87, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10};
static volatile uint32_t index1 = 1;

#define LOAD(name, base, off)                                                       \
    ({                                                                              \
        uint32_t _r;                                                                \
        __asm__ volatile(name " %0, " #off "(%1)" : "=r"(_r) : "r"(base) : "memory"); \
        _r;                                                                         \
    })
#define STORE(name, value, base, off) \
    __asm__ volatile(name " %0, " #off "(%1)" : : "r"(value), "r"(base) : "memory")

/* lwl + lwr into a register that starts with `seed`. */
static inline uint32_t load_left(const uint8_t *p, uint32_t seed) {
    __asm__ volatile("lwl %0, 0(%1)" : "+r"(seed) : "r"(p) : "memory");
    return seed;
}
static inline uint32_t load_right(const uint8_t *p, uint32_t seed) {
    __asm__ volatile("lwr %0, 0(%1)" : "+r"(seed) : "r"(p) : "memory");
    return seed;
}

int main(void) {
    uint8_t *b = buffer;
    CHECK(1, LOAD("lb", b, 1) == 0xFFFFFF82u);
    CHECK(2, LOAD("lbu", b, 1) == 0x82u);
    CHECK(3, LOAD("lh", b, 2) == 0x00000384u);
    CHECK(4, LOAD("lh", b, 4) == 0xFFFF8506u);
    CHECK(5, LOAD("lhu", b, 4) == 0x8506u);
    CHECK(6, LOAD("lw", b, 4) == 0x85068708u);
    /* Unaligned word at b + 1 = bytes 82 03 84 85, by lwl/lwr pairs. */
    CHECK(8, load_left(b + 1, 0xAAAAAAAAu) == 0x820384AAu);
    CHECK(9, load_right(b + 4, 0xAAAAAAAAu) == 0xAAAAAA85u);
    CHECK(11, load_right(b + 4, load_left(b + 1, 0)) == 0x82038485u);
    CHECK(12, load_left(b + 0, 0x11111111u) == 0x01820384u);
    CHECK(13, load_right(b + 3, 0x11111111u) == 0x01820384u);
    CHECK(14, load_left(b + 3, 0x11111111u) == 0x84111111u);
    CHECK(15, load_right(b + 0, 0x11111111u) == 0x11111101u);
    /* Unaligned struct member: the compiler emits lwl/lwr or byte loads itself. */
    struct __attribute__((packed)) { uint8_t tag; uint32_t value; } packed;
    memcpy(&packed, b + index1 - 1, sizeof packed);
    CHECK(16, packed.value == 0x82038485u);
    /* Stores. */
    uint32_t words[3] __attribute__((aligned(4))) = {0, 0, 0};
    uint8_t *p = (uint8_t *)words;
    STORE("sb", 0x1234u, p, 1);
    CHECK(17, words[0] == 0x00340000u);
    STORE("sh", 0xBEEFu, p, 2);
    CHECK(18, words[0] == 0x0034BEEFu);
    STORE("sw", 0xCAFEF00Du, p, 4);
    CHECK(19, words[1] == 0xCAFEF00Du);
    words[2] = 0x11223344u;
    STORE("swl", 0xA1B2C3D4u, p, 9); /* bytes 9..11 = A1 B2 C3 */
    CHECK(20, words[2] == 0x11A1B2C3u);
    words[2] = 0x11223344u;
    STORE("swr", 0xA1B2C3D4u, p, 9); /* bytes 8..9 = C3 D4 */
    CHECK(21, words[2] == 0xC3D43344u);
    words[2] = 0x11223344u;
    STORE("swl", 0xA1B2C3D4u, p, 8);
    CHECK(22, words[2] == 0xA1B2C3D4u);
    words[2] = 0x11223344u;
    STORE("swr", 0xA1B2C3D4u, p, 11);
    CHECK(23, words[2] == 0xA1B2C3D4u);
    words[2] = 0x11223344u;
    STORE("swl", 0xA1B2C3D4u, p, 11);
    CHECK(24, words[2] == 0x112233A1u);
    words[2] = 0x11223344u;
    STORE("swr", 0xA1B2C3D4u, p, 8);
    CHECK(25, words[2] == 0xD4223344u);
    /* ll/sc: a single thread, so sc always succeeds and writes 1 to its register. */
    uint32_t counter __attribute__((aligned(4))) = 41;
    uint32_t loaded, flag;
    __asm__ volatile(
        "ll %0, 0(%2)\n\t"
        "addiu %1, %0, 1\n\t"
        "sc %1, 0(%2)\n\t"
        "sync"
        : "=&r"(loaded), "=&r"(flag)
        : "r"(&counter)
        : "memory");
    CHECK(26, loaded == 41 && flag == 1 && counter == 42);
    /* C atomics compile to ll/sc loops. */
    static volatile uint32_t shared = 5;
    __atomic_fetch_add(&shared, 3, __ATOMIC_SEQ_CST);
    CHECK(27, shared == 8);
    return 0;
}

/* Multiply and divide: mult/multu/div/divu through HI/LO, mul, madd/maddu/msub/msubu. */
#include "check.h"

static volatile uint32_t va = 0xFFFFFFFDu /* -3 */, vb = 100000, vc = 0x80000000u, vd = 7;

static inline void set_hilo(uint32_t hi, uint32_t lo) {
    __asm__ volatile("mthi %0\n\tmtlo %1" : : "r"(hi), "r"(lo));
}
static inline uint32_t get_hi(void) {
    uint32_t r;
    __asm__ volatile("mfhi %0" : "=r"(r));
    return r;
}
static inline uint32_t get_lo(void) {
    uint32_t r;
    __asm__ volatile("mflo %0" : "=r"(r));
    return r;
}
#define HILO_OP(name, a, b) __asm__ volatile(name " %0, %1" : : "r"(a), "r"(b))
/* The two-operand div is an assembler macro (with a zero check); this is the instruction. */
#define DIV_OP(name, a, b) __asm__ volatile(name " $zero, %0, %1" : : "r"(a), "r"(b))

int main(void) {
    uint32_t a = va, b = vb, c = vc, d = vd;
    HILO_OP("mult", a, b); /* -300000 */
    CHECK(1, get_lo() == 0xFFFB6C20u && get_hi() == 0xFFFFFFFFu);
    HILO_OP("multu", a, b); /* 0xFFFFFFFD * 100000 */
    CHECK(2, get_lo() == 0xFFFB6C20u && get_hi() == 0x0001869Fu);
    HILO_OP("mult", c, c); /* (-2^31)^2 = 2^62 */
    CHECK(3, get_lo() == 0 && get_hi() == 0x40000000u);
    DIV_OP("div", b, a); /* 100000 / -3 = -33333 rem 1 */
    CHECK(4, get_lo() == (uint32_t)-33333 && get_hi() == 1);
    DIV_OP("div", a, d); /* -3 / 7 = 0 rem -3 (truncation) */
    CHECK(5, get_lo() == 0 && get_hi() == 0xFFFFFFFDu);
    DIV_OP("divu", a, b); /* 4294967293 / 100000 */
    CHECK(6, get_lo() == 42949 && get_hi() == 67293);
    CHECK(7, ASM_RRR("mul", a, b) == 0xFFFB6C20u);
    set_hilo(0, 10);
    HILO_OP("madd", a, d); /* 10 + -21 = -11 */
    CHECK(8, get_lo() == 0xFFFFFFF5u && get_hi() == 0xFFFFFFFFu);
    set_hilo(1, 0xFFFFFFFFu);
    HILO_OP("maddu", a, d); /* 0x1FFFFFFFF + 0x6_FFFFFFEB */
    CHECK(9, get_lo() == 0xFFFFFFEAu && get_hi() == 0x00000008u);
    set_hilo(0, 5);
    HILO_OP("msub", a, d); /* 5 - (-21) = 26 */
    CHECK(10, get_lo() == 26 && get_hi() == 0);
    set_hilo(0, 5);
    HILO_OP("msubu", d, d); /* 5 - 49 = -44 (64-bit) */
    CHECK(11, get_lo() == 0xFFFFFFD4u && get_hi() == 0xFFFFFFFFu);
    /* C-level 64-bit arithmetic, compiled to whatever the compiler picks. */
    volatile int64_t big = -1234567890123LL;
    CHECK(12, big * 3 == -3703703670369LL);
    CHECK(13, (uint32_t)(big >> 20) == (uint32_t)(-1234567890123LL >> 20));
    volatile int32_t n = -17, m = 5;
    CHECK(14, n / m == -3 && n % m == -2);
    volatile uint32_t un = 4000000000u, um = 3;
    CHECK(15, un / um == 1333333333u && un % um == 1);
    return 0;
}

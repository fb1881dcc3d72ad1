/* Control flow: every branch and jump with its delay slot, links, jump tables,
 * function pointers, recursion, conditional moves, clz/clo. */
#include "check.h"

static volatile int32_t vneg = -5, vpos = 9, vzero = 0;

/* Each branch macro yields 1 if taken. The delay slot always runs: it adds 10. */
#define BRANCH1(name, a)                                       \
    ({                                                         \
        uint32_t _r = 0;                                       \
        __asm__ volatile(".set push\n\t.set noreorder\n\t"     \
                         name " %1, 1f\n\t"                    \
                         "addiu %0, %0, 10\n\t"                \
                         "addiu %0, %0, 100\n"                 \
                         "1:\n\t.set pop"                      \
                         : "+r"(_r)                            \
                         : "r"(a));                            \
        _r == 10 ? 1 : (_r == 110 ? 0 : 99);                   \
    })
#define BRANCH2(name, a, b)                                    \
    ({                                                         \
        uint32_t _r = 0;                                       \
        __asm__ volatile(".set push\n\t.set noreorder\n\t"     \
                         name " %1, %2, 1f\n\t"                \
                         "addiu %0, %0, 10\n\t"                \
                         "addiu %0, %0, 100\n"                 \
                         "1:\n\t.set pop"                      \
                         : "+r"(_r)                            \
                         : "r"(a), "r"(b));                    \
        _r == 10 ? 1 : (_r == 110 ? 0 : 99);                   \
    })

/* bltzal/bgezal link ra whether or not they branch. */
#define BRANCH_LINK(name, a)                                   \
    ({                                                         \
        uint32_t _r = 0, _ra, _here;                           \
        __asm__ volatile(".set push\n\t.set noreorder\n\t"     \
                         "move $t9, $ra\n\t"                   \
                         "bal 2f\n\t"                          \
                         "nop\n"                               \
                         "2:\n\t"                              \
                         "move %2, $ra\n\t"                    \
                         name " %3, 1f\n\t"                    \
                         "addiu %0, %0, 10\n\t"                \
                         "addiu %0, %0, 100\n"                 \
                         "1:\n\t"                              \
                         "move %1, $ra\n\t"                    \
                         "move $ra, $t9\n\t"                   \
                         ".set pop"                            \
                         : "+r"(_r), "=&r"(_ra), "=&r"(_here)  \
                         : "r"(a)                              \
                         : "$25", "$31");                      \
        (_ra == _here + 12) ? (_r == 10 ? 1 : (_r == 110 ? 0 : 99)) : 98; \
    })

static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static int add1(int x) { return x + 1; }
static int twice(int x) { return 2 * x; }
static int negate(int x) { return -x; }
static int (*const table[3])(int) = {add1, twice, negate};

static int classify(int x) {
    switch (x) { /* dense cases become a jump table (jr through a register) */
    case 0: return 11;
    case 1: return 23;
    case 2: return 37;
    case 3: return 41;
    case 4: return 53;
    case 5: return 67;
    case 6: return 79;
    default: return -1;
    }
}

int main(void) {
    int32_t neg = vneg, pos = vpos, zero = vzero;
    CHECK(1, BRANCH2("beq", pos, pos) == 1);
    CHECK(2, BRANCH2("beq", pos, neg) == 0);
    CHECK(3, BRANCH2("bne", pos, neg) == 1);
    CHECK(4, BRANCH2("bne", zero, zero) == 0);
    CHECK(5, BRANCH1("blez", zero) == 1);
    CHECK(6, BRANCH1("blez", pos) == 0);
    CHECK(7, BRANCH1("bgtz", pos) == 1);
    CHECK(8, BRANCH1("bgtz", zero) == 0);
    CHECK(9, BRANCH1("bltz", neg) == 1);
    CHECK(10, BRANCH1("bltz", zero) == 0);
    CHECK(11, BRANCH1("bgez", zero) == 1);
    CHECK(12, BRANCH1("bgez", neg) == 0);
    CHECK(13, BRANCH_LINK("bltzal", neg) == 1);
    CHECK(14, BRANCH_LINK("bltzal", pos) == 0);
    CHECK(15, BRANCH_LINK("bgezal", pos) == 1);
    CHECK(16, BRANCH_LINK("bgezal", neg) == 0);
    CHECK(17, fib(pos + 3) == 144);
    int acc = 0;
    for (int i = 0; i < 3; i++) acc += table[i](pos + i); /* jalr */
    CHECK(18, acc == 10 + 20 - 11);
    int sum = 0;
    for (int i = -1; i < 8; i++) sum += classify(i);
    CHECK(19, sum == 11 + 23 + 37 + 41 + 53 + 67 + 79 - 2);
    uint32_t dst = 77;
    __asm__ volatile("movz %0, %1, %2" : "+r"(dst) : "r"(pos), "r"(zero));
    CHECK(21, dst == 9);
    dst = 77;
    __asm__ volatile("movz %0, %1, %2" : "+r"(dst) : "r"(pos), "r"(neg));
    CHECK(22, dst == 77);
    dst = 77;
    __asm__ volatile("movn %0, %1, %2" : "+r"(dst) : "r"(pos), "r"(neg));
    CHECK(23, dst == 9);
    dst = 77;
    __asm__ volatile("movn %0, %1, %2" : "+r"(dst) : "r"(pos), "r"(zero));
    CHECK(24, dst == 77);
    uint32_t count;
    __asm__ volatile("clz %0, %1" : "=r"(count) : "r"(pos));
    CHECK(25, count == 28);
    __asm__ volatile("clz %0, %1" : "=r"(count) : "r"(zero));
    CHECK(26, count == 32);
    __asm__ volatile("clo %0, %1" : "=r"(count) : "r"(neg));
    CHECK(27, count == 29);
    __asm__ volatile("clo %0, %1" : "=r"(count) : "r"(pos));
    CHECK(28, count == 0);
    /* A branch in a loop whose delay slot does the work. */
    uint32_t total = 0;
    for (uint32_t i = 0; i < (uint32_t)pos; i++) total += i * i;
    CHECK(29, total == 204);
    /* j and jalr, which the compiler did not pick above. */
    uint32_t via;
    __asm__ volatile(".set push\n\t.set noreorder\n\t"
                     "li %0, 0\n\t"
                     "j 1f\n\t"
                     "addiu %0, %0, 1\n\t"
                     "addiu %0, %0, 10\n"
                     "1:\n\t.set pop"
                     : "=&r"(via));
    CHECK(30, via == 1);
    static int (*volatile indirect)(int) = add1;
    CHECK(31, indirect(pos) == 10);
    return 0;
}

/* Self-checking test programs: main returns 0 when every check passes, else the
 * number of the first failing check. Inputs are volatile so nothing is folded. */
#include "opml.h"
#define CHECK(id, cond)              \
    do {                             \
        if (!(cond)) return (id);    \
    } while (0)

/* One instruction, two register operands, one result. */
#define ASM_RRR(name, a, b)                                                      \
    ({                                                                           \
        uint32_t _r;                                                             \
        __asm__ volatile(name " %0, %1, %2" : "=r"(_r) : "r"(a), "r"(b));        \
        _r;                                                                      \
    })
#define ASM_RRI(name, a, imm)                                                    \
    ({                                                                           \
        uint32_t _r;                                                             \
        __asm__ volatile(name " %0, %1, " #imm : "=r"(_r) : "r"(a));             \
        _r;                                                                      \
    })

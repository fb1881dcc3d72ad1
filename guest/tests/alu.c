/* ALU: register and immediate arithmetic, logic, shifts, comparisons, lui. */
#include "check.h"

static volatile uint32_t vx = 0x80000001u, vy = 7, vz = 0xFFFFFFF0u, vs = 7;

int main(void) {
    uint32_t x = vx, y = vy, z = vz, s = vs;
    CHECK(1, ASM_RRR("addu", x, y) == 0x80000008u);
    CHECK(2, ASM_RRR("subu", x, y) == 0x7FFFFFFAu);
    CHECK(3, ASM_RRR("and", x, z) == 0x80000000u);
    CHECK(4, ASM_RRR("or", x, y) == 0x80000007u);
    CHECK(5, ASM_RRR("xor", x, z) == 0x7FFFFFF1u);
    CHECK(6, ASM_RRR("nor", x, y) == 0x7FFFFFF8u);
    CHECK(7, ASM_RRI("sll", x, 4) == 0x00000010u);
    CHECK(8, ASM_RRI("srl", x, 4) == 0x08000000u);
    CHECK(9, ASM_RRI("sra", x, 4) == 0xF8000000u);
    CHECK(10, ASM_RRR("sllv", x, s) == 0x00000080u);
    CHECK(11, ASM_RRR("srlv", x, s) == 0x01000000u);
    CHECK(12, ASM_RRR("srav", x, s) == 0xFF000000u);
    CHECK(13, ASM_RRR("slt", x, y) == 1);
    CHECK(14, ASM_RRR("sltu", x, y) == 0);
    CHECK(15, ASM_RRI("slti", x, -3) == 1);
    CHECK(16, ASM_RRI("sltiu", y, -3) == 1); /* -3 sign-extends, then compares unsigned */
    CHECK(17, ASM_RRI("sltiu", z, 5) == 0);
    CHECK(18, ASM_RRI("andi", x, 0xFF) == 1);
    CHECK(19, ASM_RRI("ori", x, 0xF0) == 0x800000F1u);
    CHECK(20, ASM_RRI("xori", z, 0xFFFF) == 0xFFFF000Fu);
    CHECK(21, ASM_RRI("addiu", x, -2) == 0x7FFFFFFFu);
    uint32_t upper;
    __asm__ volatile("lui %0, 0xABCD" : "=r"(upper));
    CHECK(22, upper == 0xABCD0000u);
    /* Trapping forms, without overflow. */
    CHECK(23, ASM_RRR("add", y, s) == 14);
    CHECK(24, ASM_RRI("addi", y, -9) == 0xFFFFFFFEu);
    CHECK(25, ASM_RRR("sub", y, z) == 23);
    /* Shifts by 0 and 31. */
    CHECK(26, ASM_RRI("sll", x, 31) == 0x80000000u);
    CHECK(27, ASM_RRI("sra", z, 0) == z);
    /* A register-0 destination is discarded. */
    uint32_t zero;
    __asm__ volatile("addiu $0, $0, 5\n\tmove %0, $0" : "=r"(zero));
    CHECK(28, zero == 0);
    return 0;
}

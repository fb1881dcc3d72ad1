"""The disassembler people read a dispute's last step in: each instruction form, encoded by hand."""

import pytest

from opml.vm.disasm import FAMILIES, OPCODES, REGIMM, SPECIAL, SPECIAL2, disassemble

from .asm import SYSCALL, i_type, j_type, r_type, regimm, special2

SP, RA, T0, T1, T2, A0, V0 = 29, 31, 8, 9, 10, 4, 2
PC = 0x0040_1000

CASES = [
    (0, "nop"),
    (SYSCALL, "syscall"),
    (r_type(0x21, rs=T0, rt=T1, rd=T2), "addu $t2, $t0, $t1"),
    (r_type(0x00, rt=T0, rd=T1, shamt=4), "sll $t1, $t0, 4"),
    (r_type(0x04, rs=T2, rt=T0, rd=T1), "sllv $t1, $t0, $t2"),
    (r_type(0x08, rs=RA), "jr $ra"),
    (r_type(0x09, rs=T0, rd=RA), "jalr $ra, $t0"),
    (r_type(0x12, rd=V0), "mflo $v0"),
    (r_type(0x11, rs=A0), "mthi $a0"),
    (r_type(0x1A, rs=T0, rt=T1), "div $t0, $t1"),
    (r_type(0x0B, rs=T0, rt=T1, rd=T2), "movn $t2, $t0, $t1"),
    (special2(0x02, rs=T0, rt=T1, rd=T2), "mul $t2, $t0, $t1"),
    (special2(0x20, rs=T0, rd=T1), "clz $t1, $t0"),
    (special2(0x00, rs=T0, rt=T1), "madd $t0, $t1"),
    (i_type(0x09, rs=SP, rt=SP, imm=-32), "addiu $sp, $sp, -32"),
    (i_type(0x0D, rs=T0, rt=T1, imm=0x8001), "ori $t1, $t0, 0x8001"),
    (i_type(0x0F, rt=T0, imm=0x1234), "lui $t0, 0x1234"),
    (i_type(0x23, rs=SP, rt=RA, imm=28), "lw $ra, 28($sp)"),
    (i_type(0x28, rs=A0, rt=T0, imm=-1), "sb $t0, -1($a0)"),
    (i_type(0x04, rs=T0, rt=T1, imm=-2), f"beq $t0, $t1, 0x{PC + 4 - 8:08x}"),
    (i_type(0x07, rs=T0, imm=3), f"bgtz $t0, 0x{PC + 4 + 12:08x}"),
    (regimm(0x01, rs=T0, imm=5), f"bgez $t0, 0x{PC + 4 + 20:08x}"),
    (regimm(0x0C, rs=T0, imm=-7), "teqi $t0, -7"),
    (j_type(0x03, 0x0040_2000), "jal 0x00402000"),
    (0xFC00_0000, "invalid instruction 0xfc000000"),
]


@pytest.mark.parametrize(("word", "text"), CASES, ids=[text for _, text in CASES])
def test_each_form_reads_as_assembly(word, text):
    assert disassemble(word, PC) == text


def test_every_instruction_the_vm_executes_is_named_first():
    words = {
        "syscall": SYSCALL, "sync": r_type(0x0F), "teq": r_type(0x34, rs=T0, rt=T1),
        "j": j_type(0x02, PC), "jal": j_type(0x03, PC), "jr": r_type(0x08, rs=RA), "jalr": r_type(0x09, rs=T0, rd=RA),
    }  # fmt: skip
    for code, name in SPECIAL.items():
        words.setdefault(name, r_type(code, rs=T0, rt=T1, rd=T2, shamt=1))
    for code, name in SPECIAL2.items():
        words.setdefault(name, special2(code, rs=T0, rt=T1, rd=T2))
    for code, name in REGIMM.items():
        words.setdefault(name, regimm(code, rs=T0, imm=1))
    for code, name in OPCODES.items():
        words.setdefault(name, i_type(code, rs=T0, rt=T1, imm=1))
    for name in (name for family in FAMILIES.values() for name in family):
        assert disassemble(words[name], PC).split(" ")[0] == name

# Entry point of every guest program. The VM starts with sp = STACK_TOP and every
# other register zero; main's return value becomes the exit code.
        .set    noreorder
        .text
        .globl  _start
        .type   _start, @function
_start:
        jal     main
        nop
        move    $a0, $v0
        li      $v0, 4246               # exit_group
        syscall
1:      b       1b                      # never reached: exit_group ends the run
        nop
        .size   _start, .-_start

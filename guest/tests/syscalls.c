/* Syscalls: write to stdout/stderr and a bad descriptor, brk, mmap, an unknown
 * number; then exit with code 3 through exit (not exit_group). */
#include "check.h"

static volatile int vbad_fd = 5;

int main(void) {
    int failed = -1;
    static const char hello[] = "hello from the guest\n";
    CHECK(1, opml_syscall3(SYS_WRITE, 1, (int)hello, sizeof hello - 1, &failed) == sizeof hello - 1 && failed == 0);
    CHECK(2, opml_syscall3(SYS_WRITE, 2, (int)"oops\n", 5, &failed) == 5 && failed == 0);
    CHECK(3, opml_syscall3(SYS_WRITE, vbad_fd, (int)hello, 3, &failed) == 9 && failed == 1); /* EBADF */
    uint32_t start = (uint32_t)opml_syscall3(SYS_BRK, 0, 0, 0, &failed);
    CHECK(4, start == 0x80000000u && failed == 0);
    CHECK(5, (uint32_t)opml_syscall3(SYS_BRK, (int)(start + 100), 0, 0, &failed) == start + 100);
    CHECK(6, (uint32_t)opml_syscall3(SYS_BRK, (int)start, 0, 0, &failed) == start + 100); /* no shrinking */
    CHECK(7, (uint32_t)opml_syscall3(SYS_BRK, (int)0xF0000001u, 0, 0, &failed) == start + 100); /* over the limit */
    uint32_t block = (uint32_t)opml_syscall3(SYS_MMAP, 0, 5000, 3, &failed);
    CHECK(8, block == start + 100 && failed == 0);
    CHECK(9, (uint32_t)opml_syscall3(SYS_MMAP, 0, 16, 3, &failed) == block + 8192);
    CHECK(10, (uint32_t)opml_syscall3(SYS_MMAP, 0x50000000, 16, 3, &failed) == 0x50000000u && failed == 0);
    opml_syscall3(SYS_MMAP, 0, 0x7FFFFFFF, 3, &failed);
    CHECK(11, failed == 1); /* ENOMEM */
    CHECK(12, opml_syscall3(4020 /* getpid */, 0, 0, 0, &failed) == 89 && failed == 1); /* ENOSYS */
    /* Heap memory works like any other. */
    uint32_t *cells = opml_alloc(64 * sizeof(uint32_t));
    CHECK(13, cells != NULL);
    for (int i = 0; i < 64; i++) cells[i] = (uint32_t)i * 3;
    uint32_t sum = 0;
    for (int i = 0; i < 64; i++) sum += cells[i];
    CHECK(14, sum == 3 * 2016);
    opml_syscall3(SYS_EXIT, 0x103 /* only the low byte counts */, 0, 0, NULL);
    return 100; /* not reached */
}

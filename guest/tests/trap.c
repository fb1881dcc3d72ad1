/* Integer division by zero: the compiler's teq check traps, ending the run with
 * the VM's trap exit code (0xF2). */
#include "check.h"

static volatile int32_t vzero = 0;

int main(void) {
    int32_t zero = vzero;
    return 1000 / zero;
}

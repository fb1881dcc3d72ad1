/* Leaves its output region malformed: a zero-length output, then a nonzero byte STRAY_OFFSET bytes into
 * the region (in a later 32-byte leaf than the length prefix). The registry's result is "malformed output",
 * with no bytes: the region is not that of any output, since an output's region is zero after its bytes. */
#include "opml.h"

#define STRAY_OFFSET 1000u

int main(void) {
    volatile uint8_t *region = (volatile uint8_t *)OPML_OUTPUT_ADDR;
    region[STRAY_OFFSET] = 0x5A;
    opml_set_output_length(0);
    return 0;
}

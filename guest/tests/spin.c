/* Never exits: a request for it can only end by its step limit ("step limit reached"). */
#include "check.h"

static volatile uint32_t counter = 0;

int main(void) {
    for (;;) {
        counter = counter + 1;
    }
}

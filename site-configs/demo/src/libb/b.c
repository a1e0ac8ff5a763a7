#include <core.h>
#include "b.h"

int b_twice_the_answer(void) { return 2 * core_answer(); }

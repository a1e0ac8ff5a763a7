#include "core.h"

const char *core_name(void) { return "libcore " CORE_VERSION; }
int core_answer(void) { return 42; }

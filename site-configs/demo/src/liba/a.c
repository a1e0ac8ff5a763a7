#include <stdio.h>
#include <core.h>
#include "a.h"

const char *a_describe(void) {
    static char buf[128];
    snprintf(buf, sizeof buf, "liba on top of %s", core_name());
    return buf;
}

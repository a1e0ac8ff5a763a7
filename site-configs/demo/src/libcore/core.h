#ifndef CORE_H
#define CORE_H
/* The bottom of the demo diamond: liba and libb both build on it. */
const char *core_name(void);
int core_answer(void);
#endif

#ifndef A_H
#define A_H
const char *a_describe(void);
#endif

#ifndef B_H
#define B_H
int b_twice_the_answer(void);
#endif

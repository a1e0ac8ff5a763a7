#include <stdio.h>
#include <a.h>
#include <b.h>
#include <core.h>

int main(void) {
    printf("%s from app\n", GREETING);
    printf("core: %s, answer %d\n", core_name(), core_answer());
    printf("a: %s\n", a_describe());
    printf("b: twice the answer is %d\n", b_twice_the_answer());
    return 0;
}

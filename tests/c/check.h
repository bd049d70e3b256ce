/* check.h: a minimal assertion harness for the ctest units. */
#ifndef PACER_CHECK_H
#define PACER_CHECK_H
#include <math.h>
#include <stdio.h>

static int check_failures = 0;
#define CHECK(cond)                                                                                                    \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                         \
      check_failures++;                                                                                                \
    }                                                                                                                  \
  } while (0)
#define CHECK_NEAR(a, b, eps) CHECK(fabs((double)(a) - (double)(b)) <= (eps))
#define CHECK_DONE()          (check_failures ? (fprintf(stderr, "%d failure(s)\n", check_failures), 1) : 0)
#endif

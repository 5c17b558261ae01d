// chokepoint-lab: the service with switchable bottlenecks. Everything lives in lab/lab.cpp.
#include "lab/lab.h"

int main(int argc, char** argv) {
  return chokepoint::lab::run(argc, argv);
}

#include "app/app.h"

int main(int argc, char** argv) {
  return chokepoint::app::run(argc, argv);
}

#pragma once
// `chokepoint stacks` output: the threads of a stacks::StackDump grouped by identical stack, each
// group with its count, state, wait and frames (innermost first, as gdb prints them), headed by
// how long the threads were held stopped. Text (every observed name through
// util::terminal_text) and JSON (render/json_text.h). Pure.

#include <string>

#include "stacks/stack_dump.h"

namespace chokepoint::render {

std::string stacks_text(const stacks::StackDump& dump);
std::string stacks_json(const stacks::StackDump& dump);

}  // namespace chokepoint::render

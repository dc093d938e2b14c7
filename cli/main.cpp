#include "cli/commands.hpp"

int main(int argc, char** argv) { return hn::cli::run(argc, argv); }

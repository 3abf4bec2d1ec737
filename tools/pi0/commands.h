// Each subcommand lives in its own file and adds itself to the CLI app through one function.
#pragma once
#include <CLI/CLI.hpp>

namespace pi0::cli {

void add_inspect(CLI::App& app);
void add_make_checkpoint(CLI::App& app);
void add_replay(CLI::App& app);
void add_compare(CLI::App& app);
void add_serve(CLI::App& app);
void add_bench(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_preprocess(CLI::App& app);
void add_infer(CLI::App& app);

}  // namespace pi0::cli

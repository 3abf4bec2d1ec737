// pi0: the command-line tool. `pi0 --help` lists the subcommands; each has its own --help.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "pi0/error.h"
#include "pi0/log.h"
#include "pi0/threads.h"
#include "pi0/version.h"

int main(int argc, char** argv) {
  pi0::set_log_callback(pi0::log_to_stderr());
  CLI::App app{
      "pi0.cpp: C++ inference for Physical Intelligence's pi0 / pi0.5 vision-language-action policies.\n"
      "Loads openpi PyTorch (or LeRobot) checkpoints: a directory with config.json and model.safetensors."};
  app.require_subcommand(1);
  // Global options may come after the subcommand too (`pi0 bench --threads 2`): a subcommand
  // hands the options it does not know to its parent. Set before the subcommands are added,
  // which inherit it.
  app.fallthrough();
  app.set_version_flag("--version", "pi0.cpp " PI0_VERSION);
  int threads = 0;
  app.add_option("--threads", threads, "worker threads for every heavy op (default: all cores)")->check(CLI::NonNegativeNumber);
  pi0::cli::add_inspect(app);
  pi0::cli::add_make_checkpoint(app);
  pi0::cli::add_replay(app);
  pi0::cli::add_compare(app);
  pi0::cli::add_serve(app);
  pi0::cli::add_bench(app);
  pi0::cli::add_tokenize(app);
  pi0::cli::add_preprocess(app);
  pi0::cli::add_infer(app);
  for (CLI::App* sub : app.get_subcommands({}))
    sub->footer(sub->get_footer() + (sub->get_footer().empty() ? "" : "\n\n") +
                "Global options, accepted before or after the subcommand:\n  --threads N   worker threads for every heavy op (default: all cores)");
  app.parse_complete_callback([&] { pi0::set_num_threads(threads); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pi0::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

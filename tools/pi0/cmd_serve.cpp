// pi0 serve --checkpoint DIR --robot NAME [--port 8000] [--host 0.0.0.0] ...: serve a policy to
// openpi robot clients (openpi's serve_policy.py protocol, docs/model.md §7) on one port, with
// GET /healthz beside the WebSocket endpoint. SIGINT/SIGTERM finish the requests in flight first.
#include <cstdio>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "pi0/error.h"
#include "policy/policy.h"
#include "serve/server.h"

namespace pi0::cli {

namespace {

struct ServeArgs {
  std::optional<bool> discrete_state_input;
  std::string checkpoint, robot, tokenizer, norm_stats, default_prompt, backend, precision = "auto";
  bool quiet = false;
  serve::ServerOptions opt;
};

void run(const ServeArgs& a) {
  PolicyOptions po;
  po.robot = a.robot;
  po.tokenizer_path = a.tokenizer;
  po.norm_stats_path = a.norm_stats;
  po.default_prompt = a.default_prompt;
  po.backend = a.backend;
  po.discrete_state_input = a.discrete_state_input;
  po.precision = parse_precision(a.precision);
  std::shared_ptr<const Policy> policy = Policy::load(a.checkpoint, po);
  serve::InferFn infer = [policy](const Dict& obs) { return policy->infer(obs); };
  Dict metadata = policy->metadata();
  serve::ServerOptions opt = a.opt;
  opt.model_info = {{"checkpoint", a.checkpoint}, {"variant", policy->config().variant()},
                    {"robot", policy->robot().name}, {"backend", a.backend.empty() ? default_backend_name() : a.backend}};
  opt.handle_signals = true;
  opt.log = !a.quiet;
  serve::Server server(opt, std::move(infer), std::move(metadata));
  std::printf("listening on %s (GET /healthz for health, /metrics for Prometheus; Ctrl-C stops after the "
              "requests in flight)\n",
              server.url().c_str());
  std::fflush(stdout);
  server.run();
  std::fprintf(stderr, "pi0 serve: stopped\n");
}

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(uint64_t(1) << 30));
  return buf;
}

// The memory a message limit allows, worked out for the default options, so that whoever raises
// the limit sees what it costs.
std::string max_message_help(const serve::ServerOptions& o) {
  serve::ServerOptions queue_only = o;
  queue_only.workers = 0;
  queue_only.max_connections = 0;
  return "largest request accepted; larger ones are refused with close code 1009 (four 720x1280 RGB cameras are "
         "11 MB). Every message held costs its size: the queue holds up to --max-queue of them (" +
         gib(serve::request_memory_bound(queue_only)) + " at the defaults); with each worker's message and "
         "decoded copy and each connection's --max-pipelined + 1 read ahead, the bound is "
         "max-message-bytes x (max-queue + 2 x workers + max-connections x (max-pipelined + 1)) = " +
         gib(serve::request_memory_bound(o)) + " at the defaults";
}

}  // namespace

void add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve a policy over openpi's WebSocket protocol (robot clients, openpi-client)");
  cmd->footer(
      "Observations may carry, beyond openpi's fields: \"noise\" [H, model action dim] (reproducible replies) and\n"
      "real-time chunking fields: rtc_prev_actions [n, robot action dim] (the previous chunk's actions not yet\n"
      "executed, as sent to the robot; None = none), rtc_inference_delay (int, required with them),\n"
      "rtc_execution_horizon (default 10), rtc_max_guidance_weight (default 10), rtc_schedule\n"
      "(ZEROS | ONES | LINEAR | EXP, default LINEAR). See README \"Real-time chunking\".");
  auto a = std::make_shared<ServeArgs>();
  serve::ServerOptions& o = a->opt;
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint directory (config.json + model.safetensors [+ assets])")->required();
  cmd->add_option("--robot", a->robot, "robot config: the observation keys and action dims (e.g. libero, droid, aloha)")->required();
  cmd->add_option("--default-prompt", a->default_prompt, "prompt used when a request has none");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer model (default: the checkpoint's)");
  cmd->add_option("--norm-stats", a->norm_stats, "norm_stats.json (default: the checkpoint's assets)");
  cmd->add_option("--backend", a->backend, "compute backend (default: the fastest available)");
  add_discrete_state_input_option(cmd, a->discrete_state_input);
  add_precision_option(cmd, &a->precision);
  cmd->add_option("--host", o.host, "address to bind")->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port (0: any free port, printed at start)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--max-message-bytes", o.max_message_bytes, max_message_help(o))
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-queue", o.max_queue, "requests that may wait for the model; beyond, refused with close code 1013")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--workers", o.workers, "policy calls run at once (each op already uses every core)")
      ->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--io-threads", o.io_threads, "network threads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--max-connections", o.max_connections, "open WebSocket connections; beyond, HTTP 503")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-pipelined", o.max_pipelined, "requests a client may send ahead of its replies")->capture_default_str();
  cmd->add_option("--handshake-timeout", o.handshake_timeout_s,
                  "seconds a new connection has to complete its HTTP request / WebSocket upgrade (and a close "
                  "its closing handshake); a TCP connect that sends nothing is closed after this")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--idle-timeout", o.idle_timeout_s, "seconds of silence (pings unanswered) before a client is dropped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--message-timeout", o.message_timeout_s,
                  "seconds a message may take to arrive once it has begun (a client trickling a frame is dropped)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--shutdown-timeout", o.shutdown_timeout_s, "seconds a shutdown waits for requests in flight")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet", a->quiet, "no per-connection log lines on stderr");
  cmd->callback([a] { run(*a); });
}

}  // namespace pi0::cli

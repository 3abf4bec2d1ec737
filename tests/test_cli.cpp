// The CLI turns bad input into a non-zero exit and a message naming the file, never a crash.
#include <gtest/gtest.h>

#include "bundle_util.h"
#include "golden_dir.h"
#include "test_util.h"

#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {
using pi0::test::CliRun;
CliRun run(const std::string& args) { return pi0::test::run_cli(args); }
std::string tmpdir(const std::string& name) { return pi0::test::temp_dir(name); }
}  // namespace

TEST(Cli, InspectGoldenNamesKindAndCount) {
  CliRun r = run("inspect " + pi0::test::golden_dir() + "/tiny_pi05 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"kind\": \"pi05\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tensors\": 92"), std::string::npos) << r.out;
}

TEST(Cli, TruncatedCheckpointIsAnErrorNamingTheFile) {
  std::string dir = tmpdir("trunc");
  fs::copy_file(pi0::test::golden_dir() + "/tiny_pi0/config.json", dir + "/config.json");
  {
    std::ifstream in(pi0::test::golden_dir() + "/tiny_pi0/model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir + "/model.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  CliRun r = run("inspect " + dir);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(dir + "/model.safetensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("past the end"), std::string::npos) << r.out;
}

TEST(Cli, MissingDirectoryAndBadArguments) {
  CliRun r = run("inspect /nonexistent/ckpt");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nonexistent/ckpt"), std::string::npos) << r.out;
  EXPECT_NE(run("make-checkpoint --preset huge --out /tmp/x").code, 0);
  EXPECT_NE(run("no-such-command").code, 0);
  CliRun h = run("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("inspect"), std::string::npos);
}

TEST(Cli, MakeCheckpointThenInspect) {
  std::string dir = tmpdir("made") + "/ck";
  CliRun m = run("make-checkpoint --preset tiny-pi05 --dtype bf16 --seed 5 --out " + dir);
  ASSERT_EQ(m.code, 0) << m.out;
  CliRun r = run("inspect " + dir + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"kind\": \"pi05\""), std::string::npos);
  EXPECT_NE(r.out.find("\"BF16\""), std::string::npos);
}

// Users type global options after the subcommand; both places work, and help shows them.
TEST(Cli, GlobalOptionsAfterTheSubcommand) {
  CliRun help = run("bench --threads 2 --help");
  ASSERT_EQ(help.code, 0) << help.out;
  EXPECT_NE(help.out.find("--threads N"), std::string::npos) << help.out;
  const std::string dir = pi0::test::golden_dir() + "/tiny_pi0";
  CliRun after = run("inspect " + dir + " --threads 1 --json");
  CliRun before = run("--threads 1 inspect " + dir + " --json");
  ASSERT_EQ(after.code, 0) << after.out;
  auto drop_time = [](std::string s) { return s.substr(0, s.find("\"open_seconds\"")); };  // the only field that varies
  EXPECT_EQ(drop_time(after.out), drop_time(before.out));
  CliRun bad = run("inspect " + dir + " --threads -1");
  EXPECT_NE(bad.code, 0) << bad.out;
}

// make-checkpoint never silently replaces a checkpoint (trained weights would be lost).
TEST(Cli, MakeCheckpointRefusesToOverwriteWithoutForce) {
  const std::string dir = tmpdir("no_overwrite") + "/ck";
  ASSERT_EQ(run("make-checkpoint --preset tiny-pi0 --seed 1 --out " + dir).code, 0);
  const auto before = fs::last_write_time(dir + "/model.safetensors");
  CliRun again = run("make-checkpoint --preset tiny-pi0 --seed 2 --out " + dir);
  EXPECT_NE(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("--force"), std::string::npos) << again.out;
  EXPECT_EQ(fs::last_write_time(dir + "/model.safetensors"), before);
  EXPECT_EQ(run("make-checkpoint --preset tiny-pi0 --seed 2 --force --out " + dir).code, 0);
}

// Out-of-range bench arguments are errors, not silently clamped or ignored.
TEST(Cli, BenchRefusesOutOfRangeTokensAndSteps) {
  const std::string dir = pi0::test::golden_dir() + "/tiny_pi0";
  for (const std::string args : {"--tokens 1000", "--tokens -3", "--steps 0", "--steps -5"}) {
    CliRun r = run("bench --checkpoint " + dir + " --runs 1 " + args);
    EXPECT_NE(r.code, 0) << args << ": " << r.out;
    EXPECT_NE(r.out.find(args.substr(0, args.find(' '))), std::string::npos) << args << ": " << r.out;
  }
}

// Paths that are not regular files are refused by name, never read (a FIFO would hang).
TEST(Cli, CheckpointPathsThatAreNotWhatTheySeem) {
  const std::string dir = tmpdir("not_files");
  std::ofstream(dir + "/plain.txt") << "x";
  CliRun file = run("inspect " + dir + "/plain.txt");
  EXPECT_NE(file.code, 0);
  EXPECT_NE(file.out.find("is a file, not a checkpoint directory"), std::string::npos) << file.out;
  const std::string ck = dir + "/fifo_ck";
  fs::create_directories(ck);
  ASSERT_EQ(::mkfifo((ck + "/config.json").c_str(), 0600), 0);
  CliRun fifo = run("inspect " + ck);
  EXPECT_NE(fifo.code, 0);
  EXPECT_NE(fifo.out.find("not a regular file"), std::string::npos) << fifo.out;
}

// The policy's own files (norm stats, robot JSON, tokenizer, images) are refused the same way: a FIFO
// would hang the command, /dev/zero would fill the memory.
TEST(Cli, PolicyFilesThatAreNotRegularFilesAreRefusedByName) {
  const std::string dir = tmpdir("not_files_policy");
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string robot_json = dir + "/robot.json";
  ASSERT_EQ(::mkfifo(robot_json.c_str(), 0600), 0);
  const std::string s = std::string(PI0_SOURCE_DIR) + "/assets/samples";
  const std::string infer = "infer --checkpoint " + pi0::test::bundle("tiny-pi0") + " --state 0,0,0,0,0,0,0,0 --prompt x ";
  const std::string images = "--image image=" + s + "/base.png --image wrist_image=" + s + "/wrist.png ";
  for (const std::string& args : {infer + "--robot libero " + images + "--norm-stats " + fifo,
                                  infer + "--robot libero " + images + "--tokenizer " + fifo,
                                  infer + "--robot libero " + images + "--tokenizer /dev/zero",
                                  infer + "--robot libero --image image=" + fifo + " --image wrist_image=" + s + "/wrist.png",
                                  infer + "--robot " + robot_json + " " + images}) {
    CliRun r = run(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.out.find("not a regular file"), std::string::npos) << args << ": " << r.out;
  }
}

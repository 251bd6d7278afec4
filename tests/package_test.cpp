// The Debian package, as a user gets it: `cpack` made it (the package_build
// test, a fixture of these), and each test unpacks it with `dpkg -x` into a
// fresh directory and uses what is there: every command run from the unpacked
// tree, the man pages checked against `--help`, the completions loaded by bash
// and zsh, and apt asked whether it could install the package.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "storage/pg_testing.hpp"
#include "support/run_process.hpp"

namespace ratchet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::ProcessResult;
using testing::run_process;

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// The long options `--help` lists for a command ("--run-key", ...).
std::set<std::string> options_in_help(const std::string& help) {
  std::set<std::string> options;
  std::regex option_line(R"(^\s+(?:-[a-zA-Z],)?(--[a-z][a-z0-9-]*))");
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_search(line, match, option_line)) options.insert(match[1]);
  }
  return options;
}

// The commands `ratchet --help` lists.
std::vector<std::string> commands_in_help(const std::string& help) {
  std::vector<std::string> commands;
  std::istringstream lines(help.substr(help.find("commands:")));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line) && line.starts_with("  ")) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    commands.push_back(name);
  }
  return commands;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool contains(const std::vector<std::string>& words, const std::string& word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

class Package : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path dir = fs::path(RATCHET_BUILD_DIR) / "package";
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().filename().string().starts_with("ratchet_") &&
          entry.path().extension() == ".deb") {
        deb_ = entry.path();
      }
    }
    ASSERT_FALSE(deb_.empty()) << "no ratchet_*.deb in " << dir << " (cpack makes it)";
    char pattern[] = "/tmp/ratchet-package-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    scratch_ = pattern;
    root_ = scratch_ / "root";
    auto unpacked = run_process({"dpkg", "-x", deb_.string(), root_.string()});
    ASSERT_EQ(unpacked.exit_code, 0) << unpacked.err;
    bin_ = root_ / "usr/bin/ratchet";
  }

  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(scratch_, ignored);
  }

  ProcessResult ratchet(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
    args.insert(args.begin(), bin_.string());
    return run_process(args, {{"RATCHET_HOME", (scratch_ / "home").string()}}, timeout);
  }

  std::vector<std::string> commands() {
    auto help = ratchet({"--help"});
    EXPECT_EQ(help.exit_code, 0);
    return commands_in_help(help.out);
  }

  fs::path deb_, scratch_, root_, bin_;
};

TEST_F(Package, HoldsTheCommandsTheSdkManPagesAndCompletions) {
  for (const char* path :
       {"usr/bin/ratchet", "usr/bin/ratchet-server", "usr/include/ratchet/ratchet.hpp",
        "usr/lib/libratchet_sdk.a", "usr/lib/cmake/ratchet/ratchetConfig.cmake",
        "usr/lib/pkgconfig/ratchet.pc", "usr/share/man/man1/ratchet.1.gz",
        "usr/share/bash-completion/completions/ratchet",
        "usr/share/zsh/vendor-completions/_ratchet"}) {
    EXPECT_TRUE(fs::exists(root_ / path)) << path;
  }
  auto names = commands();
  EXPECT_GE(names.size(), 15u);
  for (const auto& name : names) {
    EXPECT_TRUE(fs::exists(root_ / ("usr/share/man/man1/ratchet-" + name + ".1.gz"))) << name;
  }
  auto depends = run_process({"dpkg-deb", "-f", deb_.string(), "Depends"});
  EXPECT_NE(depends.out.find("libssl3"), std::string::npos) << depends.out;
  EXPECT_NE(depends.out.find("libpq5"), std::string::npos) << depends.out;
  EXPECT_NE(depends.out.find("libsodium23"), std::string::npos) << depends.out;
}

TEST_F(Package, EveryCommandRunsFromTheUnpackedTree) {
  auto version = ratchet({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(version.out.starts_with("ratchet ")) << version.out;
  for (const auto& name : commands()) {
    auto help = ratchet({name, "--help"});
    EXPECT_EQ(help.exit_code, 0) << name << ": " << help.err;
    EXPECT_NE(help.out.find("--help"), std::string::npos) << name;
  }
  auto expect_ok = [&](std::vector<std::string> args, int exit_code = 0) {
    auto result = ratchet(args);
    EXPECT_EQ(result.exit_code, exit_code) << args[0] << ": " << result.err;
    return result;
  };
  expect_ok({"start", "--run-key", "k", "--strict", "--sync", "--", "echo", "from the package"});
  EXPECT_EQ(expect_ok({"logs", "--run-key", "k"}).out, "from the package\n");
  expect_ok({"status", "--run-key", "k", "--all"});
  expect_ok({"wait", "--run-key", "k"});
  expect_ok({"unlock", "--run-key", "k", "--reason", "again"});
  expect_ok({"rerun", "--run-key", "k", "--sync"});
  expect_ok({"start", "--run-key", "long", "--", "sleep", "300"});
  expect_ok({"cancel", "--run-key", "long", "--grace", "1s"});
  expect_ok({"start", "--run-key", "long", "--", "sleep", "300"});
  expect_ok({"abort", "--run-key", "long", "--grace-seconds", "1"});
  expect_ok({"list"});
  expect_ok({"clean", "--before", "2999-01-01"});
  auto made =
      run_process({"sh", std::string(RATCHET_SOURCE_DIR) + "/tests/data/make-orchesjob-home.sh",
                   (scratch_ / "orchesjob").string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_ok({"import", "--from-orchesjob", (scratch_ / "orchesjob").string()});
  expect_ok({"keygen", "--out", (scratch_ / "signing.pem").string()});
  EXPECT_TRUE(fs::exists(scratch_ / "signing.pem"));
  // The servers start from the package and stop on SIGTERM.
  for (std::vector<std::string> server :
       {std::vector<std::string>{"dev", "http://127.0.0.1:9", "--port", "0"},
        std::vector<std::string>{"server", "--api-key", "k", "--listen", "127.0.0.1:0", "--db",
                                 (scratch_ / "server.db").string()}}) {
    // Its log (stderr) goes where the banner of `dev` goes (stdout).
    server.insert(server.begin(), {"sh", "-c", "exec \"$0\" \"$@\" 2>&1", bin_.string()});
    auto process =
        testing::Process::spawn(server, {{"RATCHET_HOME", (scratch_ / "home").string()}});
    bool started = process.read_stdout_until("127.0.0.1:", 30s);
    kill(process.pid(), SIGTERM);
    auto ended = process.finish(30s);
    EXPECT_TRUE(started) << server[4] << " did not start: " << ended.out;
    EXPECT_FALSE(ended.timed_out) << server[4] << " did not stop on SIGTERM";
    EXPECT_EQ(ended.exit_code, 0) << server[4] << ": " << ended.out;
  }
}

// Jobs on a PostgreSQL store: the static `ratchet` hands them on to the
// packaged ratchet-server, which loads libpq (a Depends of the package).
TEST_F(Package, JobsRunOnAPostgresStoreFromTheUnpackedTree) {
  std::optional<testing::PgTestDatabase> db;
  RATCHET_OPEN_PG_DATABASE(db);
  auto started = ratchet({"start", "--db", db->url(), "--run-key", "pg", "--strict", "--sync", "--",
                          "echo", "on postgres"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  auto logs = ratchet({"logs", "--db", db->url(), "--run-key", "pg"});
  EXPECT_EQ(logs.out, "on postgres\n") << logs.err;
  auto again = ratchet({"start", "--db", db->url(), "--run-key", "pg", "--strict", "--", "true"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("\"accepted\": false"), std::string::npos) << again.out;
  auto jobs = db->number("SELECT count(*) FROM runs WHERE kind = 'job'");
  ASSERT_TRUE(jobs.is_ok()) << jobs.status().message();
  EXPECT_EQ(*jobs, 1);
}

TEST_F(Package, EachManPageDocumentsEveryOptionOfItsHelp) {
  auto groff = run_process({"sh", "-c", "command -v groff"});
  ASSERT_EQ(groff.exit_code, 0) << "groff is missing (scripts/install-deps.sh installs groff-base)";
  for (const auto& name : commands()) {
    fs::path page = root_ / ("usr/share/man/man1/ratchet-" + name + ".1.gz");
    auto text = run_process({"gzip", "-dc", page.string()});
    ASSERT_EQ(text.exit_code, 0) << page;
    // The page as man shows it, and roff's warnings about it.
    auto rendered = run_process(
        {"sh", "-c", "gzip -dc \"$0\" | groff -man -Tascii -ww -P-cbou 2>&1", page.string()});
    EXPECT_EQ(rendered.exit_code, 0);
    EXPECT_EQ(rendered.out.find("warning"), std::string::npos) << name << ":\n" << rendered.out;
    for (const auto& option : options_in_help(ratchet({name, "--help"}).out)) {
      EXPECT_NE(rendered.out.find(option), std::string::npos) << name << " page lacks " << option;
    }
  }
  auto main_page = run_process({"sh", "-c", "gzip -dc \"$0\" | groff -man -Tascii -P-cbou",
                                (root_ / "usr/share/man/man1/ratchet.1.gz").string()});
  for (const auto& name : commands()) {
    EXPECT_NE(main_page.out.find("ratchet-" + name + "(1)"), std::string::npos) << name;
  }
  EXPECT_NE(main_page.out.find("RATCHET_HOME"), std::string::npos);
}

// Runs bash's completion of `words` (the last one being completed) with the
// package's script loaded into a bash that has nothing else loaded.
std::vector<std::string> bash_complete(const fs::path& script,
                                       const std::vector<std::string>& words, const fs::path& cwd) {
  std::string array;
  for (const auto& word : words) array += " '" + word + "'";
  std::string program = "cd '" + cwd.string() + "' && source '" + script.string() +
                        "' && complete -p ratchet >/dev/null && COMP_WORDS=(" + array +
                        ") && COMP_CWORD=" + std::to_string(words.size() - 1) +
                        " && _ratchet && printf '%s\\n' \"${COMPREPLY[@]}\"";
  auto result = run_process({"bash", "--norc", "--noprofile", "-c", program});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return lines_of(result.out);
}

TEST_F(Package, BashCompletesEveryCommandAndFlag) {
  fs::path script = root_ / "usr/share/bash-completion/completions/ratchet";
  auto names = commands();
  auto completed = bash_complete(script, {"ratchet", ""}, scratch_);
  for (const auto& name : names) EXPECT_TRUE(contains(completed, name)) << name;
  EXPECT_EQ(bash_complete(script, {"ratchet", "sta"}, scratch_),
            (std::vector<std::string>{"start", "status"}));
  for (const auto& name : names) {
    auto flags = bash_complete(script, {"ratchet", name, "--"}, scratch_);
    for (const auto& option : options_in_help(ratchet({name, "--help"}).out)) {
      EXPECT_TRUE(contains(flags, option)) << "ratchet " << name << " " << option;
    }
  }
  EXPECT_EQ(bash_complete(script, {"ratchet", "logs", "--stream", ""}, scratch_),
            (std::vector<std::string>{"stdout", "stderr"}));
  fs::create_directory(scratch_ / "workdir");
  EXPECT_EQ(bash_complete(script, {"ratchet", "start", "--cwd", "work"}, scratch_),
            std::vector<std::string>{"workdir"});
  auto after_dashes =
      bash_complete(script, {"ratchet", "start", "--run-key", "k", "--", "ech"}, scratch_);
  EXPECT_TRUE(contains(after_dashes, "echo")) << "the COMMAND after -- is a command";
}

TEST_F(Package, ZshLoadsItsCompletionThroughCompinit) {
  auto zsh = run_process({"sh", "-c", "command -v zsh"});
  ASSERT_EQ(zsh.exit_code, 0) << "zsh is missing (scripts/install-deps.sh installs it)";
  fs::path dir = root_ / "usr/share/zsh/vendor-completions";
  auto syntax = run_process({"zsh", "-n", (dir / "_ratchet").string()});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  auto loaded =
      run_process({"zsh", "-f", "-c",
                   "fpath=(\"$0\" $fpath); autoload -Uz compinit; compinit -u -d \"$1\"; "
                   "print -r -- $_comps[ratchet]; autoload -Uz +X _ratchet && print loaded",
                   dir.string(), (scratch_ / "zcompdump").string()});
  EXPECT_EQ(loaded.exit_code, 0) << loaded.err;
  EXPECT_EQ(loaded.out, "_ratchet\nloaded\n") << loaded.err;
  std::string text = read_file(dir / "_ratchet");
  for (const auto& name : commands()) {
    EXPECT_NE(text.find("    " + name + ")"), std::string::npos) << name;
    for (const auto& option : options_in_help(ratchet({name, "--help"}).out)) {
      bool offered = text.find("'" + option) != std::string::npos ||
                     text.find("'*" + option) != std::string::npos;  // a repeatable one
      EXPECT_TRUE(offered) << name << " " << option;
    }
  }
}

TEST_F(Package, AptCanInstallItWithWhatDebianHas) {
  if (!fs::exists("/var/lib/apt/lists") || fs::is_empty("/var/lib/apt/lists")) {
    GTEST_SKIP() << "apt has no package lists here (apt-get update), so it cannot resolve "
                    "the package's dependencies";
  }
  auto simulated = run_process({"apt-get", "-s", "install", deb_.string()}, {}, 120s);
  EXPECT_EQ(simulated.exit_code, 0) << simulated.out << simulated.err;
  EXPECT_NE(simulated.out.find("Inst ratchet"), std::string::npos) << simulated.out;
}

}  // namespace
}  // namespace ratchet

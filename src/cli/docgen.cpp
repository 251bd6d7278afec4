// ratchet-docgen OUT_DIR: writes the man pages (OUT_DIR/man1/ratchet.1 and
// ratchet-<command>.1) and the bash and zsh completions (OUT_DIR/completion/)
// from the commands' own CLI11 definitions, the ones `--help` prints: each
// command is run with a parse hook that hands over its CLI::App instead of
// parsing (set_parse_hook). Run at build time; not installed.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "cli/server_setup.hpp"

namespace ratchet::cli {
namespace {

struct OptionDoc {
  std::vector<std::string> flags;  // "--run-key", "-f"; empty for a positional
  std::string value;               // what it takes ("KEY"); empty for a flag
  std::string help;
  std::string default_value;
  std::vector<std::string> choices;
  bool required = false;
  bool repeatable = false;
};

struct CommandDoc {
  std::string name;
  std::string summary;
  std::string description;
  std::string footer;
  std::vector<OptionDoc> options;
  bool takes_command = false;  // COMMAND [ARGS...] after the options
};

// "TEXT:{stdout,stderr}" -> {"stdout", "stderr"}.
std::vector<std::string> choices_in(const std::string& type_name) {
  std::vector<std::string> choices;
  auto open = type_name.find('{');
  auto close = type_name.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return choices;
  std::stringstream list(type_name.substr(open + 1, close - open - 1));
  for (std::string choice; std::getline(list, choice, ',');) {
    if (!choice.empty()) choices.push_back(choice);
  }
  return choices;
}

OptionDoc describe(const CLI::Option& option) {
  OptionDoc doc;
  for (const auto& name : option.get_snames()) doc.flags.push_back("-" + name);
  for (const auto& name : option.get_lnames()) doc.flags.push_back("--" + name);
  std::string type = option.get_type_name();
  if (option.get_expected_min() > 0 || !option.nonpositional()) {
    doc.value = option.nonpositional() ? type.substr(0, type.find(':')) : option.get_name();
  }
  doc.help = option.get_description();
  doc.default_value = option.get_default_str();
  doc.choices = choices_in(type);
  doc.required = option.get_required();
  doc.repeatable = option.get_expected_max() > 1;
  return doc;
}

bool known(const CommandDoc& doc, const OptionDoc& option) {
  for (const auto& other : doc.options) {
    if (other.flags == option.flags) return true;
  }
  return false;
}

void add_options(const CLI::App& app, CommandDoc* doc) {
  for (const CLI::Option* option : app.get_options()) {
    OptionDoc described = describe(*option);
    // Option groups repeat the command's --help.
    if (!known(*doc, described)) doc->options.push_back(std::move(described));
  }
  // Option groups are unnamed sub-apps of the command.
  for (const CLI::App* group : app.get_subcommands({})) {
    if (!group->get_name().empty()) continue;
    std::size_t first = doc->options.size();
    add_options(*group, doc);
    if (group->get_require_option_min() != 1 || group->get_require_option_max() != 1) continue;
    std::vector<std::string> names;
    for (std::size_t i = first; i < doc->options.size(); ++i) {
      names.push_back(doc->options[i].flags.back());
    }
    for (std::size_t i = first; i < doc->options.size(); ++i) {
      std::string alternatives;
      for (const auto& name : names) alternatives += (alternatives.empty() ? "" : ", ") + name;
      doc->options[i].help += " (exactly one of " + alternatives + ")";
    }
  }
}

CommandDoc read_command(const Command& command) {
  CommandDoc doc;
  doc.name = std::string(command.name);
  doc.summary = std::string(command.summary);
  set_parse_hook([&](const CLI::App& app) {
    doc.description = app.get_description();
    doc.footer = app.get_footer();
    doc.takes_command = app.get_prefix_command();
    add_options(app, &doc);
  });
  char* argv[] = {doc.name.data(), nullptr};
  command.run(1, argv);
  set_parse_hook(nullptr);
  return doc;
}

// --- man pages ---------------------------------------------------------------

// Text as roff reads it: backslashes escaped, no line taken for a request.
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
    line_start = c == '\n';
  }
  return out;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

void write_man_header(std::ostream& out, const std::string& page, const std::string& summary) {
  out << ".TH " << upper(page) << " 1 \"\" \"ratchet " RATCHET_VERSION "\" \"Ratchet Manual\"\n"
      << ".SH NAME\n"
      << roff(page) << " \\- " << roff(summary) << "\n";
}

void write_option(std::ostream& out, const OptionDoc& option) {
  out << ".TP\n";
  std::string flags;
  for (const auto& flag : option.flags) flags += (flags.empty() ? "" : ", ") + flag;
  if (option.flags.empty()) {
    out << ".I " << roff(option.value) << "\n";
  } else {
    out << "\\fB" << roff(flags) << "\\fR";
    if (!option.value.empty()) out << " \\fI" << roff(option.value) << "\\fR";
    out << "\n";
  }
  std::string help = option.help;
  if (!option.default_value.empty()) help += " (default: " + option.default_value + ")";
  if (option.required) help += " (required)";
  if (option.repeatable) help += " (may be repeated)";
  out << roff(help) << "\n";
}

void write_command_page(const std::filesystem::path& dir, const CommandDoc& doc) {
  std::ofstream out(dir / ("ratchet-" + doc.name + ".1"));
  write_man_header(out, "ratchet-" + doc.name, doc.summary);
  out << ".SH SYNOPSIS\n.B ratchet " << roff(doc.name) << "\n[\\fIOPTIONS\\fR]";
  for (const auto& option : doc.options) {
    if (option.flags.empty()) out << " \\fI" << roff(option.value) << "\\fR";
  }
  if (doc.takes_command) out << " [\\fB\\-\\-\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR...]";
  out << "\n.SH DESCRIPTION\n" << roff(doc.description) << "\n";
  out << ".SH OPTIONS\n";
  for (const auto& option : doc.options) write_option(out, option);
  if (!doc.footer.empty()) out << ".SH NOTES\n" << roff(doc.footer) << "\n";
  out << ".SH EXIT STATUS\nSee\n.BR ratchet (1).\n"
      << ".SH SEE ALSO\n.BR ratchet (1)\n";
}

void write_main_page(const std::filesystem::path& dir, const std::vector<CommandDoc>& commands) {
  std::ofstream out(dir / "ratchet.1");
  write_man_header(out, "ratchet", "durable execution for C++: jobs, a scheduler server, an SDK");
  out << ".SH SYNOPSIS\n.B ratchet\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
      << ".SH DESCRIPTION\n"
      << roff(
             "ratchet runs shell commands as durable, idempotent jobs (once per run key), "
             "and runs the scheduler server for durable calls. Each command has its own "
             "page, and its own --help.")
      << "\n.SH COMMANDS\n";
  for (const auto& command : commands) {
    out << ".TP\n.BR ratchet\\-" << roff(command.name) << " (1)\n" << roff(command.summary) << "\n";
  }
  out << ".SH EXIT STATUS\n";
  for (const auto& [code, text] : exit_code_help()) {
    out << ".TP\n.B " << code << "\n" << roff(std::string(text)) << "\n";
  }
  out << ".SH ENVIRONMENT\n";
  for (const auto& [name, text] : environment_help()) {
    out << ".TP\n.B " << name << "\n" << roff(std::string(text)) << "\n";
  }
  out << ".SH SEE ALSO\n";
  for (std::size_t i = 0; i < commands.size(); ++i) {
    out << ".BR ratchet\\-" << roff(commands[i].name) << " (1)"
        << (i + 1 < commands.size() ? ",\n" : "\n");
  }
}

// --- completions ---------------------------------------------------------------

bool takes_directory(const OptionDoc& option) { return option.value == "DIR"; }
bool takes_file(const OptionDoc& option) {
  return option.value == "FILE" || option.value == "FILE|URL";
}

std::string joined(const std::vector<std::string>& words, const std::string& separator = " ") {
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : separator) + word;
  return out;
}

std::string command_names(const std::vector<CommandDoc>& commands) {
  std::vector<std::string> names;
  for (const auto& command : commands) names.push_back(command.name);
  return joined(names);
}

void write_bash_case(std::ostream& out, const CommandDoc& doc) {
  std::vector<std::string> flags;
  out << "    " << doc.name << ")\n";
  if (doc.takes_command) {
    out << "      for ((i = 2; i < COMP_CWORD; i++)); do\n"
        << "        [[ ${COMP_WORDS[i]} == -- ]] && { COMPREPLY=($(compgen -c -- \"$cur\")); "
           "return; }\n"
        << "      done\n";
  }
  out << "      case $prev in\n";
  for (const auto& option : doc.options) {
    if (option.flags.empty()) continue;
    for (const auto& flag : option.flags) flags.push_back(flag);
    if (option.value.empty()) continue;
    out << "        " << joined(option.flags, "|") << ") ";
    if (!option.choices.empty()) {
      out << "COMPREPLY=($(compgen -W \"" << joined(option.choices) << "\" -- \"$cur\"))";
    } else if (takes_directory(option)) {
      out << "COMPREPLY=($(compgen -d -- \"$cur\"))";
    } else if (takes_file(option)) {
      out << "COMPREPLY=($(compgen -f -- \"$cur\"))";
    } else {
      out << "COMPREPLY=()";
    }
    out << "; return ;;\n";
  }
  out << "      esac\n"
      << "      COMPREPLY=($(compgen -W \"" << joined(flags) << "\" -- \"$cur\")) ;;\n";
}

void write_bash(const std::filesystem::path& dir, const std::vector<CommandDoc>& commands) {
  std::ofstream out(dir / "ratchet.bash");
  out << "# bash completion for ratchet, generated by ratchet-docgen from the commands'\n"
         "# own definitions (the ones --help prints). Needs nothing but bash.\n"
         "_ratchet() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} i\n"
         "  if ((COMP_CWORD == 1)); then\n"
         "    COMPREPLY=($(compgen -W \""
      << command_names(commands)
      << " --help --version\" -- \"$cur\"))\n"
         "    return\n"
         "  fi\n"
         "  case ${COMP_WORDS[1]} in\n";
  for (const auto& command : commands) write_bash_case(out, command);
  out << "  esac\n"
         "}\n"
         "complete -F _ratchet ratchet\n";
}

// Text inside a zsh _arguments spec: its brackets, colons and quotes escaped.
std::string zsh_text(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      if (c == '[' || c == ']' || c == ':' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out;
}

std::string zsh_action(const OptionDoc& option) {
  if (!option.choices.empty()) return "(" + joined(option.choices) + ")";
  if (takes_directory(option)) return "_files -/";
  if (takes_file(option)) return "_files";
  return " ";
}

void write_zsh_case(std::ostream& out, const CommandDoc& doc) {
  out << "    " << doc.name << ")\n      _arguments -s -S";
  for (const auto& option : doc.options) {
    std::string help = zsh_text(option.help);
    if (option.flags.empty()) {
      out << " \\\n        '1:" << zsh_text(option.value) << ":" << zsh_action(option) << "'";
      continue;
    }
    for (const auto& flag : option.flags) {
      out << " \\\n        '" << (option.repeatable ? "*" : "") << flag;
      if (option.value.empty()) {
        out << "[" << help << "]'";
      } else {
        out << (flag.starts_with("--") ? "=" : "") << "[" << help << "]:" << zsh_text(option.value)
            << ":" << zsh_action(option) << "'";
      }
    }
  }
  if (doc.takes_command) out << " \\\n        '*::command:_normal'";
  out << " ;;\n";
}

void write_zsh(const std::filesystem::path& dir, const std::vector<CommandDoc>& commands) {
  std::ofstream out(dir / "_ratchet");
  out << "#compdef ratchet\n"
         "# zsh completion for ratchet, generated by ratchet-docgen from the commands'\n"
         "# own definitions (the ones --help prints).\n"
         "_ratchet() {\n"
         "  local -a commands\n"
         "  commands=(\n";
  for (const auto& command : commands) {
    out << "    '" << command.name << ":" << zsh_text(command.summary) << "'\n";
  }
  out << "  )\n"
         "  if ((CURRENT == 2)); then\n"
         "    _describe -t commands 'ratchet command' commands\n"
         "    return\n"
         "  fi\n"
         "  local command=$words[2]\n"
         "  shift words\n"
         "  ((CURRENT--))\n"
         "  case $command in\n";
  for (const auto& command : commands) write_zsh_case(out, command);
  out << "  esac\n"
         "}\n"
         "_ratchet \"$@\"\n";
}

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  using namespace ratchet::cli;
  if (argc != 2) {
    std::fprintf(stderr, "usage: ratchet-docgen OUT_DIR\n");
    return 2;
  }
  // Defaults some commands take from the environment must not depend on the
  // build machine's.
  clearenv();
  std::filesystem::path out = argv[1];
  std::filesystem::create_directories(out / "man1");
  std::filesystem::create_directories(out / "completion");
  std::vector<CommandDoc> commands;
  for (const auto& command : join_tables(kJobCommands, kServerCommands)) {
    commands.push_back(read_command(command));
  }
  for (const auto& command : commands) write_command_page(out / "man1", command);
  write_main_page(out / "man1", commands);
  write_bash(out / "completion", commands);
  write_zsh(out / "completion", commands);
  return 0;
}

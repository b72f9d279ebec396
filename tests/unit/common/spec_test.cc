#include "common/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace gangway::common {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFullSpec[] = R"(kind: Job
apiVersion: gangway/v1
name: hello
replicas: 2
procsPerNode: 4
resources:
  cpus: 1.5
  memory: 256Mi
  gpus: 2
command: [sh, -c, "echo hi"]
args:
  - --lr
  - "0.1"
env:
  FOO: bar
  LR: 1e-3
  DEBUG: yes
workingDir: /tmp
restartPolicy: OnFailure
backoffLimit: 3
activeDeadlineSeconds: 600
priority: -5
)";

// The error message of a spec that must fail, with the code checked.
std::string ErrorOf(std::string_view yaml) {
  auto parsed = ParseJobSpec(yaml);
  EXPECT_FALSE(parsed.ok()) << yaml;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

std::string ErrorOf(const v1::JobSpec& spec) {
  absl::Status status = ValidateJobSpec(spec);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

// The value, or -1 with a failure (dereferencing a failed StatusOr aborts).
int64_t Value(const absl::StatusOr<int64_t>& result) {
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : -1;
}

v1::JobSpec ValidProto() {
  v1::JobSpec spec;
  spec.set_name("train");
  spec.add_command("python");
  ApplyJobSpecDefaults(&spec);
  return spec;
}

TEST(ParseJobSpecTest, FullSpec) {
  auto parsed = ParseJobSpec(kFullSpec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::JobSpec& s = parsed->spec;
  EXPECT_EQ(s.name(), "hello");
  EXPECT_EQ(s.replicas(), 2);
  EXPECT_EQ(s.procs_per_node(), 4);
  EXPECT_EQ(s.resources().milli_cpus(), 1500);
  EXPECT_EQ(s.resources().memory_bytes(), 256 << 20);
  EXPECT_EQ(s.resources().gpus(), 2);
  EXPECT_THAT(s.command(), ::testing::ElementsAre("sh", "-c", "echo hi"));
  EXPECT_THAT(s.args(), ::testing::ElementsAre("--lr", "0.1"));
  EXPECT_EQ(s.env().size(), 3u);
  EXPECT_EQ(s.env().at("FOO"), "bar");
  EXPECT_EQ(s.env().at("LR"), "1e-3");    // the text as written, not a float
  EXPECT_EQ(s.env().at("DEBUG"), "yes");  // not a YAML 1.1 boolean
  EXPECT_EQ(s.working_dir(), "/tmp");
  EXPECT_EQ(s.restart_policy(), v1::RESTART_POLICY_ON_FAILURE);
  EXPECT_EQ(s.backoff_limit(), 3);
  EXPECT_EQ(s.active_deadline_seconds(), 600);
  EXPECT_EQ(s.priority(), -5);
  EXPECT_TRUE(ValidateJobSpec(s).ok());

  const auto& lines = parsed->lines;
  EXPECT_EQ(lines.at("kind"), 1);
  EXPECT_EQ(lines.at("name"), 3);
  EXPECT_EQ(lines.at("resources"), 6);
  EXPECT_EQ(lines.at("resources.cpus"), 7);
  EXPECT_EQ(lines.at("resources.gpus"), 9);
  EXPECT_EQ(lines.at("command"), 10);
  EXPECT_EQ(lines.at("command[2]"), 10);
  EXPECT_EQ(lines.at("args"), 11);
  EXPECT_EQ(lines.at("args[1]"), 13);
  EXPECT_EQ(lines.at("env.LR"), 16);
  EXPECT_EQ(lines.at("priority"), 22);
  EXPECT_EQ(parsed->Where("resources.gpus"), "line 9: resources.gpus");
  EXPECT_EQ(parsed->Where("nothing.here"), "nothing.here");
}

TEST(ParseJobSpecTest, Defaults) {
  auto parsed = ParseJobSpec("name: a\ncommand: ./train\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::JobSpec& s = parsed->spec;
  EXPECT_EQ(s.replicas(), 1);
  EXPECT_EQ(s.procs_per_node(), 1);
  EXPECT_EQ(s.backoff_limit(), 6);
  EXPECT_EQ(s.restart_policy(), v1::RESTART_POLICY_NEVER);
  EXPECT_EQ(s.active_deadline_seconds(), 0);
  EXPECT_EQ(s.priority(), 0);
  EXPECT_EQ(s.resources().milli_cpus(), 1000);  // one CPU per process, as Slurm
  EXPECT_EQ(s.resources().memory_bytes(), 0);
  EXPECT_EQ(s.resources().gpus(), 0);
  EXPECT_THAT(s.command(), ::testing::ElementsAre("./train"));
  EXPECT_EQ(parsed->lines.at("command[0]"), 2);
  EXPECT_EQ(parsed->lines.count("replicas"), 0u);
}

TEST(ParseJobSpecTest, EmptyCollectionsAreAllowed) {
  auto parsed =
      ParseJobSpec("name: a\ncommand: [x]\nresources:\nargs:\nenv: {}\nbackoffLimit: 0\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.backoff_limit(), 0);
  EXPECT_TRUE(parsed->spec.args().empty());
}

TEST(ParseJobSpecTest, TrailingDocumentMarkerIsFine) {
  EXPECT_TRUE(ParseJobSpec("name: a\ncommand: [x]\n---\n").ok());
}

TEST(ParseJobSpecTest, UserNamesTheWorkloadUserAndMustBeAUserName) {
  absl::StatusOr<ParsedJobSpec> p = ParseJobSpec("name: a\ncommand: [x]\nuser: alice\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->spec.user(), "alice");
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nuser: 'Alice; rm'\n"),
              HasSubstr("line 3: user: not a user name"));
}

TEST(ParseJobSpecTest, UnknownFieldSuggestsName) {
  std::string e = ErrorOf("name: a\ncommand: [x]\nresources:\n  gpu: 1\n");
  EXPECT_THAT(e, HasSubstr("line 4: resources.gpu: unknown field (did you mean \"gpus\"?)"));
  e = ErrorOf("name: a\ncommand: [x]\nprocs_per_node: 2\n");
  EXPECT_THAT(e,
              HasSubstr("line 3: procs_per_node: unknown field (did you mean \"procsPerNode\"?)"));
  e = ErrorOf("name: a\ncommand: [x]\nresources: {mem: 1Gi}\n");
  EXPECT_THAT(e, HasSubstr("line 3: resources.mem: unknown field (did you mean \"memory\"?)"));
  e = ErrorOf("name: a\ncommand: [x]\nimage: ubuntu\n");
  EXPECT_THAT(e, AllOf(HasSubstr("line 3: image: unknown field"), Not(HasSubstr("did you mean"))));
}

TEST(ParseJobSpecTest, WrongTypes) {
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\n\n\n\n\nreplicas: two\n"),
              HasSubstr("line 7: replicas: must be an integer, got \"two\""));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  gpus: 1.5\n"),
              HasSubstr("line 4: resources.gpus: must be an integer, got \"1.5\""));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: true\n"),
              HasSubstr("line 3: replicas: must be an integer, got \"true\""));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: \"2\"\n"),
              HasSubstr("line 3: replicas: must be an integer, got the string \"2\""));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 0x10\n"),
              HasSubstr("line 3: replicas: must be an integer"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 010\n"),
              HasSubstr("line 3: replicas: must be an integer, got \"010\" (leading zeros"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 1_000\n"),
              HasSubstr("line 3: replicas: must be an integer"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas:\n"),
              HasSubstr("line 3: replicas: must be an integer, got null"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\npriority: [1]\n"),
              HasSubstr("line 3: priority: must be an integer, got a list"));
  EXPECT_THAT(ErrorOf("name: {a: b}\ncommand: [x]\n"),
              HasSubstr("line 1: name: must be a string, got a mapping"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: {a: b}\n"),
              HasSubstr("line 2: command: must be a non-empty list of strings"));
  EXPECT_THAT(ErrorOf("name: a\ncommand:\n  - sh\n  - [x]\n"),
              HasSubstr("line 4: command[1]: must be a string, got a list"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nargs: --lr\n"),
              HasSubstr("line 3: args: must be a list of strings"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv:\n  - name: FOO\n    value: bar\n"),
              HasSubstr("line 3: env: must be a mapping of NAME: value, got a list"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv:\n  FOO:\n"),
              HasSubstr("line 4: env.FOO: must be a string, got null"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources: 4\n"),
              HasSubstr("line 3: resources: must be a mapping"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  cpus: [1]\n"),
              HasSubstr("line 4: resources.cpus: must be a quantity"));
}

TEST(ParseJobSpecTest, OutOfRange) {
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 0\n"),
              HasSubstr("line 3: replicas: must be between 1 and 1024, got 0"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 4294967297\n"),
              HasSubstr("line 3: replicas: must be between 1 and 1024, got 4294967297"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 99999999999999999999999\n"),
              HasSubstr("line 3: replicas: must be between 1 and 1024"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nprocsPerNode: 257\n"),
              HasSubstr("line 3: procsPerNode: must be between 1 and 256, got 257"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  gpus: 65\n"),
              HasSubstr("line 4: resources.gpus: must be between 0 and 64, got 65"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nbackoffLimit: -1\n"),
              HasSubstr("line 3: backoffLimit: must be between 0 and 10000, got -1"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\npriority: 1001\n"),
              HasSubstr("line 3: priority: must be between -1000 and 1000, got 1001"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nactiveDeadlineSeconds: 0\n"),
              HasSubstr("line 3: activeDeadlineSeconds: must be between 1 and"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  cpus: 2000000\n"),
              HasSubstr("line 4: resources.cpus: must be at most 1000000 cpus"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  memory: 17Ti\n"),
              HasSubstr("line 4: resources.memory: must be at most 16Ti"));
}

TEST(ParseJobSpecTest, FieldRules) {
  EXPECT_THAT(ErrorOf("command: [x]\n"), HasSubstr("name: required"));
  EXPECT_THAT(ErrorOf("name: Hello\ncommand: [x]\n"),
              HasSubstr("line 1: name: must be a DNS-1123 label"));
  EXPECT_THAT(ErrorOf("name: a-\ncommand: [x]\n"), HasSubstr("line 1: name: must be a DNS-1123"));
  EXPECT_THAT(ErrorOf("name: " + std::string(64, 'a') + "\ncommand: [x]\n"),
              HasSubstr("line 1: name: must be at most 63 characters"));
  EXPECT_TRUE(ParseJobSpec("name: " + std::string(63, 'a') + "\ncommand: [x]\n").ok());
  EXPECT_THAT(ErrorOf("name: a\n"), HasSubstr("command: must be a non-empty list"));
  EXPECT_THAT(ErrorOf("name: a\n\ncommand: []\n"),
              HasSubstr("line 3: command: must be a non-empty list"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [\"\", x]\n"),
              HasSubstr("line 2: command[0]: must not be empty"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: python train.py\n"),
              HasSubstr("line 2: command: a single string is one program name"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv:\n  OK: 1\n  9BAD: x\n"),
              HasSubstr("line 5: env.9BAD: not a valid environment variable name"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv: {A-B: x}\n"),
              HasSubstr("line 3: env.A-B: not a valid environment variable name"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nargs: [\"a\\0b\"]\n"),
              HasSubstr("line 3: args[0]: must not contain a NUL character"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nrestartPolicy: onFailure\n"),
              HasSubstr("line 3: restartPolicy: must be one of Never, OnFailure, ExitCode, got "
                        "\"onFailure\" (did you mean \"OnFailure\"?)"));
  EXPECT_THAT(ErrorOf("kind: Sweep\nname: a\ncommand: [x]\n"),
              HasSubstr("line 1: kind: must be \"Job\", got \"Sweep\""));
  EXPECT_THAT(ErrorOf("apiVersion: v1\nname: a\ncommand: [x]\n"),
              HasSubstr("line 1: apiVersion: must be \"gangway/v1\""));
}

TEST(ParseJobSpecTest, ReportsEveryErrorSortedByLine) {
  std::string e = ErrorOf("replicas: 0\nname: A\ncommand: [x]\npriority: 5000\n");
  EXPECT_THAT(e, HasSubstr("line 1: replicas: must be between 1 and 1024, got 0\n"
                           "line 2: name: must be a DNS-1123 label"));
  EXPECT_THAT(e, HasSubstr("\nline 4: priority:"));
  // A field with a type error is not also reported as missing.
  e = ErrorOf("name: [a]\ncommand: [x]\n");
  EXPECT_THAT(e, Not(HasSubstr("required")));
}

TEST(ParseJobSpecTest, DuplicateFields) {
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nreplicas: 1\nreplicas: 2\n"),
              HasSubstr("line 4: replicas: duplicate field (first set on line 3)"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv:\n  A: 1\n  A: 2\n"),
              HasSubstr("line 5: env.A: duplicate variable (first set on line 4)"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources: {gpus: 1, gpus: 2}\n"),
              HasSubstr("line 3: resources.gpus: duplicate field (first set on line 3)"));
}

TEST(ParseJobSpecTest, DocumentShape) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("spec is empty"));
  EXPECT_THAT(ErrorOf("# only a comment\n"), HasSubstr("spec is empty"));
  EXPECT_THAT(ErrorOf("---\n"), HasSubstr("spec is empty"));
  EXPECT_THAT(ErrorOf("- a\n- b\n"), HasSubstr("line 1: a job spec must be a mapping of fields"));
  EXPECT_THAT(ErrorOf("hello\n"), HasSubstr("a job spec must be a mapping of fields"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\n---\nname: b\ncommand: [y]\n"),
              HasSubstr("line 4: spec holds more than one YAML document"));
  EXPECT_THAT(ErrorOf("---\n---\nname: a\ncommand: [x]\n"),
              HasSubstr("line 3: spec holds more than one YAML document"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\n<<: {replicas: 2}\n"),
              HasSubstr("line 3: <<: merge keys (<<) are not supported"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\n[a]: 1\n"),
              HasSubstr("line 3: field names must be plain strings, got a list"));
}

TEST(ParseJobSpecTest, MalformedYaml) {
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x\nreplicas: 2\n"),
              AllOf(HasSubstr("malformed YAML: "), HasSubstr("line ")));
  EXPECT_THAT(ErrorOf("name: a\n\tcommand: [x]\n"), HasSubstr("malformed YAML"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv: {A: \"\\q\"}\n"),
              HasSubstr("line 3: malformed YAML: unknown escape character"));
  EXPECT_THAT(ErrorOf(std::string("name: a\ncom\0mand: [x]\n", 22)),
              HasSubstr("line 2: malformed YAML: contains a NUL byte"));
  EXPECT_THAT(ErrorOf(std::string(100000, '[')), HasSubstr("malformed YAML"));
  // yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040).
  EXPECT_THAT(ErrorOf(","), HasSubstr("line 1: malformed YAML: unexpected \",\""));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\n---\n,\n"),
              HasSubstr("line 4: malformed YAML: unexpected \",\""));
  // A lone surrogate cannot be UTF-8, so it must never reach a proto string.
  EXPECT_THAT(ErrorOf("name: a\ncommand: [\"\\ud800\"]\n"), HasSubstr("malformed YAML"));
}

TEST(ParseJobSpecTest, SizeLimit) {
  std::string big = "name: a\ncommand: [x]\n#" + std::string(kMaxSpecBytes, 'x') + "\n";
  EXPECT_THAT(ErrorOf(big), HasSubstr("the limit is 1048576"));
}

// An alias repeats a node without repeating its text: nested ones turned a
// 104 KB spec into a 100 MB job. Anchors alone are harmless and allowed.
TEST(ParseJobSpecTest, AliasesAreRefusedWithTheirLine) {
  EXPECT_THAT(ErrorOf("name: a\ncommand: &c [x, y]\nargs: *c\n"),
              HasSubstr("line 3: aliases are not supported (\"*c\")"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nenv:\n  A: &v hi\n  B: *v\n"),
              HasSubstr("line 5: aliases are not supported"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources: &r {cpus: 1}\nx:\n  <<: *r\n"),
              HasSubstr("line 5: aliases are not supported"));
  // The billion-laughs shape is refused before anything is expanded.
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    laughs += absl::StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 10; ++i)
      laughs += absl::StrCat(i ? ", " : "", "*", std::string(1, static_cast<char>(c - 1)));
    laughs += "]\n";
  }
  EXPECT_THAT(ErrorOf(laughs), HasSubstr("line 2: aliases are not supported"));
  EXPECT_THAT(SpecKind("kind: Job\nname: &n a\ncommand: [*n]\n").status().message(),
              HasSubstr("line 3: aliases are not supported"));
  auto anchored = ParseJobSpec("name: a\ncommand: &c [x, y]\n");
  EXPECT_TRUE(anchored.ok()) << anchored.status();
}

// Proto3 strings must be UTF-8: invalid bytes used to pass the loader and fail
// serialization later, with an empty error.
TEST(ParseJobSpecTest, InvalidUtf8IsRefusedWithLineAndByte) {
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nargs: [\"\xff\"]\n"),
              HasSubstr("line 3 (byte 29): spec is not valid UTF-8 (byte 0xff)"));
  EXPECT_THAT(ErrorOf("# caf\xc3\n"), HasSubstr("line 1 (byte 5): spec is not valid UTF-8"));
  // Overlong and surrogate encodings are not UTF-8 either.
  EXPECT_THAT(ErrorOf("name: a\ncommand: [\"\xc0\xaf\"]\n"), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [\"\xed\xa0\x80\"]\n"), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(SpecKind("name: \xfe\n").status().message(), HasSubstr("not valid UTF-8"));
  auto ok = ParseJobSpec("name: a\ncommand: [\"caf\xc3\xa9\", \"\xf0\x9f\x9a\x80\"]\n");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(ParseJobSpecTest, QuantitiesInYaml) {
  auto parsed =
      ParseJobSpec("name: a\ncommand: [x]\nresources:\n  cpus: \"500m\"\n  memory: 1073741824\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.resources().milli_cpus(), 500);
  EXPECT_EQ(parsed->spec.resources().memory_bytes(), int64_t{1} << 30);
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  memory: 512m\n"),
              HasSubstr("line 4: resources.memory: memory quantity \"512m\" has unknown unit"));
  EXPECT_THAT(ErrorOf("name: a\ncommand: [x]\nresources:\n  cpus: -1\n"),
              HasSubstr("line 4: resources.cpus: CPU quantity \"-1\" must not be negative"));
}

TEST(QuantityTest, MilliCpus) {
  EXPECT_EQ(Value(ParseMilliCpus("0")), 0);
  EXPECT_EQ(Value(ParseMilliCpus("1")), 1000);
  EXPECT_EQ(Value(ParseMilliCpus("0.5")), 500);
  EXPECT_EQ(Value(ParseMilliCpus(".25")), 250);
  EXPECT_EQ(Value(ParseMilliCpus("2.5000")), 2500);
  EXPECT_EQ(Value(ParseMilliCpus("500m")), 500);
  EXPECT_EQ(Value(ParseMilliCpus("0m")), 0);
  EXPECT_EQ(Value(ParseMilliCpus("9223372036854775807m")), INT64_MAX);
  EXPECT_EQ(Value(ParseMilliCpus("9223372036854775.807")), INT64_MAX);
  for (const char* bad : {"", "-1", "-500m", "abc", "1.", "1e3", "0x10", "1.5m", "m", " 1", "1 ",
                          "+1", "1..5", "0.0005", "9223372036854775808m", "9223372036854775.808",
                          "99999999999999999999999", "1k"}) {
    auto r = ParseMilliCpus(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(std::string(ParseMilliCpus("-1").status().message()),
              HasSubstr("must not be negative"));
  EXPECT_THAT(std::string(ParseMilliCpus("0.0005").status().message()),
              HasSubstr("finer than one millicpu"));
  EXPECT_THAT(std::string(ParseMilliCpus("99999999999999999999").status().message()),
              HasSubstr("too large"));
  EXPECT_THAT(std::string(ParseMilliCpus("two").status().message()),
              HasSubstr("invalid CPU quantity \"two\""));
}

TEST(QuantityTest, Bytes) {
  EXPECT_EQ(Value(ParseBytes("0")), 0);
  EXPECT_EQ(Value(ParseBytes("1024")), 1024);
  EXPECT_EQ(Value(ParseBytes("1Ki")), 1024);
  EXPECT_EQ(Value(ParseBytes("256Mi")), 256 << 20);
  EXPECT_EQ(Value(ParseBytes("1.5Gi")), 3 * (int64_t{1} << 29));
  EXPECT_EQ(Value(ParseBytes("2Ti")), int64_t{2} << 40);
  EXPECT_EQ(Value(ParseBytes("1Ei")), int64_t{1} << 60);
  EXPECT_EQ(Value(ParseBytes("1k")), 1000);
  EXPECT_EQ(Value(ParseBytes("1K")), 1000);
  EXPECT_EQ(Value(ParseBytes("2G")), 2'000'000'000);
  EXPECT_EQ(Value(ParseBytes("0.5k")), 500);
  EXPECT_EQ(Value(ParseBytes("1.000")), 1);
  EXPECT_EQ(Value(ParseBytes("9223372036854775807")), INT64_MAX);
  EXPECT_EQ(Value(ParseBytes("0.000000000000000001E")), 1);
  for (const char* bad : {"",
                          "-1",
                          "-1Gi",
                          "abc",
                          "1GB",
                          "1gi",
                          "1.",
                          ".",
                          "1.1",
                          "0.3Ki",
                          "Gi",
                          "1 Gi",
                          "8Ei",
                          "9223372036854775808",
                          "99999999999999999999999Ki",
                          "1e9",
                          "0x10",
                          "512m",
                          "1.5.5Gi",
                          "0.0000000000000000001E"}) {
    auto r = ParseBytes(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(std::string(ParseBytes("-1").status().message()), HasSubstr("must not be negative"));
  EXPECT_THAT(std::string(ParseBytes("8Ei").status().message()), HasSubstr("too large"));
  EXPECT_THAT(std::string(ParseBytes("1.1").status().message()),
              HasSubstr("not a whole number of bytes"));
  EXPECT_THAT(std::string(ParseBytes("1GB").status().message()), HasSubstr("unknown unit \"GB\""));
  EXPECT_THAT(std::string(ParseBytes("512m").status().message()),
              HasSubstr("did you mean \"512Mi\"?"));
}

TEST(ValidateJobSpecTest, ValidProtoPasses) { EXPECT_TRUE(ValidateJobSpec(ValidProto()).ok()); }

TEST(ValidateJobSpecTest, ApplyDefaults) {
  v1::JobSpec spec;
  ApplyJobSpecDefaults(&spec);
  EXPECT_EQ(spec.replicas(), 1);
  EXPECT_EQ(spec.procs_per_node(), 1);
  EXPECT_EQ(spec.restart_policy(), v1::RESTART_POLICY_NEVER);
  EXPECT_EQ(spec.backoff_limit(), 0);
  EXPECT_EQ(spec.resources().milli_cpus(), kDefaultMilliCpus);
  // A resources message is taken as given: 0 cpus there is a choice.
  v1::JobSpec given;
  given.mutable_resources()->set_gpus(1);
  ApplyJobSpecDefaults(&given);
  EXPECT_EQ(given.resources().milli_cpus(), 0);
}

// A job without resources asked for nothing and so counted against nothing.
TEST(ParseJobSpecTest, CpusDefaultToOnePerProcessAndExplicitValuesStay) {
  auto parsed = ParseJobSpec("name: a\ncommand: [x]\nresources: {gpus: 1}\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.resources().milli_cpus(), 1000);
  EXPECT_EQ(parsed->spec.resources().memory_bytes(), 0);
  for (auto [text, milli] : {std::pair{"0.1", 100}, {"0", 0}, {"\"250m\"", 250}, {"4", 4000}}) {
    auto p = ParseJobSpec(absl::StrCat("name: a\ncommand: [x]\nresources:\n  cpus: ", text, "\n"));
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->spec.resources().milli_cpus(), milli) << text;
  }
}

// A node's ranks are launched in one message, past gRPC's limit it never
// arrives: refused at submit, naming the biggest part of the command line.
TEST(ParseJobSpecTest, LaunchOverTheGrpcLimitIsRefused) {
  v1::JobSpec spec = ValidProto();
  (*spec.mutable_env())["DATA"] = std::string(5'000'000, 'd');
  EXPECT_THAT(ErrorOf(spec), HasSubstr("env: one node's launch would be about 5.0 MB"));
  EXPECT_GT(EstimateLaunchBytes(spec), kMaxLaunchBytes);
  spec = ValidProto();
  spec.add_args(std::string(4'500'000, 'a'));
  EXPECT_THAT(ErrorOf(spec), HasSubstr("args: one node's launch would be about 4.5 MB (4500.0 KB "
                                       "of command, args and env), over gRPC's 4 MiB message "
                                       "limit"));
}

// The command line and env go once per node, not once per rank: 600 KB of
// arguments x 8 processes was refused (and, before that, a 4.8 MB launch
// wedged the node).
TEST(ParseJobSpecTest, LargeArgumentsTimesProcsPerNodeAreAccepted) {
  const std::string big(600'000, 'a');
  EXPECT_TRUE(
      ParseJobSpec(absl::StrCat("name: a\nprocsPerNode: 8\ncommand: [x]\nargs: [", big, "]\n"))
          .ok());
  v1::JobSpec spec = ValidProto();
  spec.set_procs_per_node(256);
  (*spec.mutable_env())["DATA"] = std::string(900'000, 'd');
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  EXPECT_LT(EstimateLaunchBytes(spec), 1'100'000u);
}

TEST(ValidateJobSpecTest, SameRulesWithoutLines) {
  v1::JobSpec spec = ValidProto();
  spec.set_replicas(0);
  EXPECT_EQ(ErrorOf(spec), "replicas: must be between 1 and 1024, got 0");

  spec = ValidProto();
  spec.mutable_resources()->set_gpus(65);
  EXPECT_EQ(ErrorOf(spec), "resources.gpus: must be between 0 and 64, got 65");

  spec = ValidProto();
  spec.mutable_resources()->set_milli_cpus(-1);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("resources.cpus: must not be negative"));

  spec = ValidProto();
  spec.mutable_resources()->set_memory_bytes(-1);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("resources.memory: must not be negative"));

  spec = ValidProto();
  spec.set_name("Bad_Name");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("name: must be a DNS-1123 label"));

  spec = ValidProto();
  spec.clear_command();
  EXPECT_THAT(ErrorOf(spec), HasSubstr("command: must be a non-empty list"));

  spec = ValidProto();
  (*spec.mutable_env())["1X"] = "v";
  EXPECT_THAT(ErrorOf(spec), HasSubstr("env.1X: not a valid environment variable name"));

  spec = ValidProto();
  spec.add_args("\xff");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("args[0]: must be valid UTF-8"));

  spec = ValidProto();
  spec.add_args(std::string("a\0b", 3));
  EXPECT_THAT(ErrorOf(spec), HasSubstr("args[0]: must not contain a NUL character"));

  spec = ValidProto();
  spec.set_restart_policy(v1::RESTART_POLICY_UNSPECIFIED);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("restartPolicy: must be Never, OnFailure or ExitCode"));
  spec.set_restart_policy(static_cast<v1::RestartPolicy>(42));
  EXPECT_THAT(ErrorOf(spec), HasSubstr("got 42"));

  spec = ValidProto();
  spec.set_active_deadline_seconds(0);  // none
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  spec.set_active_deadline_seconds(-5);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("activeDeadlineSeconds: must be between 1 and"));

  spec = ValidProto();
  spec.set_priority(-1001);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("priority: must be between -1000 and 1000, got -1001"));
}

TEST(ValidateJobSpecTest, ValidUtf8IsAccepted) {
  v1::JobSpec spec = ValidProto();
  spec.add_args("héllo wörld ✓ 𝄞");
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    spec.set_args(0, bad);
    EXPECT_FALSE(ValidateJobSpec(spec).ok()) << absl::CHexEscape(bad);
  }
}

// Random byte flips, insertions and truncations of a valid spec: every result
// is a spec or INVALID_ARGUMENT, never a crash or another code; a spec that
// parses always passes ValidateJobSpec and serializes.
TEST(ParseJobSpecFuzzTest, MutationsNeverCrash) {
  std::mt19937 rng(20240611);
  const std::string base = kFullSpec;
  const std::string alphabet = ":-[]{}\"'#&*!|>%@`,?\n\t \\0123456789abcxyzGiMm.";
  int ok = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t pos = rng() % text.size();
      switch (rng() % 5) {
        case 0:
          text[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          text[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 2:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 3:
          text.erase(pos, 1 + rng() % 8);
          break;
        case 4:
          text.resize(pos);
          break;
      }
    }
    auto parsed = ParseJobSpec(text);
    if (parsed.ok()) {
      ++ok;
      EXPECT_TRUE(ValidateJobSpec(parsed->spec).ok()) << text;
      std::string wire;
      EXPECT_TRUE(parsed->spec.SerializeToString(&wire)) << text;
    } else {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
      EXPECT_FALSE(parsed.status().message().empty());
    }
  }
  // The mutations should leave a fair share valid, or the loop tests little.
  EXPECT_GT(ok, 50);
  EXPECT_LT(ok, 1950);
}

// The shipped job examples are what users copy first: each must load.
TEST(SpecTest, EveryExampleJobLoads) {
  int loaded = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(GANGWAY_SOURCE_DIR) + "/examples/jobs")) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<ParsedJobSpec> spec = ParseJobSpec(text.str());
    EXPECT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    ++loaded;
  }
  EXPECT_GE(loaded, 3);
}

}  // namespace
}  // namespace gangway::common

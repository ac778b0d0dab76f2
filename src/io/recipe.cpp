// The strict recipe loader: YAML files (with base: chains) and command-line overrides become a
// table of section.key -> (YAML value, where it was set), which is then decoded field by field
// against the schema and checked across fields. Every error names file:line (or "command line").
#include "mt/io/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/io/recipe_did_you_mean.h"
#include "mt/io/recipe_schema.h"

namespace mt {

int MoeSection::experts_at(int moe_index) const {
  if (experts_per_layer.empty()) return experts;
  MT_CHECK(moe_index >= 0 && moe_index < static_cast<int>(experts_per_layer.size()),
           "moe.experts: MoE layer index ", moe_index, " out of range [0, ", experts_per_layer.size(), ")");
  return experts_per_layer[moe_index];
}

std::string Recipe::where(std::initializer_list<const char*> keys) const {
  for (const char* k : keys) {
    auto it = set_at.find(k);
    if (it != set_at.end()) return it->second;
  }
  return sources.empty() ? "recipe" : sources.back();
}

bool operator==(const Recipe& a, const Recipe& b) {
  return a.model == b.model && a.moe == b.moe && a.data == b.data && a.optim == b.optim &&
         a.schedule == b.schedule && a.train == b.train && a.checkpoint == b.checkpoint &&
         a.log == b.log && a.dist == b.dist && a.distill == b.distill;
}

namespace {

constexpr const char* kCommandLine = "command line";

// A scalar written in quotes: a string, never a number or a bool.
bool quoted(const YAML::Node& n) { return n.Tag() == "!"; }

// One set key: its YAML value and where it was set ("file:line" or "command line").
struct Leaf {
  YAML::Node value;
  std::string where;
};
using Tree = std::map<std::string, std::map<std::string, Leaf>>;  // section -> key -> leaf

// A YAML value as an error message shows what was found.
std::string describe_yaml(const YAML::Node& n) {
  if (n.IsNull()) return "nothing (null)";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return str_cat(quoted(n) ? "the quoted string '" : "'", n.Scalar(), "'");
}

std::string at(const std::string& file, const YAML::Mark& mark) {
  return str_cat(file, ":", mark.line + 1);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  for (const auto& s : recipe_schema()) names.push_back(s.name);
  return names;
}

const RecipeSection* find_section(const std::string& name) {
  for (const auto& s : recipe_schema())
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> key_names(const RecipeSection& section) {
  std::vector<std::string> names;
  for (const auto& f : section.fields) names.push_back(f.name);
  return names;
}

std::vector<std::string> dotted_names() {
  std::vector<std::string> names;
  for (const auto& s : recipe_schema())
    for (const auto& f : s.fields) names.push_back(s.name + "." + f.name);
  return names;
}

// Keys of a YAML mapping in order, refusing one that appears twice (yaml-cpp keeps both).
void check_no_duplicates(const YAML::Node& map, const std::string& file, const std::string& prefix) {
  std::map<std::string, int> seen;  // key -> 1-based line
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string key = it->first.Scalar();
    int line = it->first.Mark().line + 1;
    auto [pos, fresh] = seen.emplace(key, line);
    MT_CHECK(fresh, file, ":", line, ": duplicate key '", prefix, key, "' (first set at line ", pos->second,
             "); a key may appear once per mapping");
  }
}

// ---- reading files ----

// Note [Quoted strings end on their line]: YAML lets a quoted string run over several lines, so a
// missing closing quote silently swallows the keys after it (up to the next quote) or fails far
// below where the mistake is. Recipes keep every quoted string on one line ("\n" writes a newline),
// and a quote left open is named at the line where it began.
// The 1-based line of the first quoted string that starts a value and does not close on its line; 0 if none.
int first_unclosed_quote_line(std::string_view text) {
  int number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    char prev = '\0';  // the last non-space character before i on this line ('\0': none yet)
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) break;  // a comment
      const bool starts_value = prev == '\0' || prev == ':' || prev == '-' || prev == '[' || prev == '{' || prev == ',';
      if ((c == '"' || c == '\'') && starts_value) {
        size_t j = i + 1;
        for (; j < line.size(); ++j) {
          if (c == '"' && line[j] == '\\') ++j;                                  // "\x" escape
          else if (c == '\'' && line[j] == '\'' && j + 1 < line.size() && line[j + 1] == '\'') ++j;  // '' is a quote
          else if (line[j] == c) break;
        }
        if (j >= line.size()) return number;
        i = j;
        prev = c;
        continue;
      }
      if (c != ' ' && c != '\t') prev = c;
    }
  }
  return 0;
}

YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  if (const int line = first_unclosed_quote_line(text))
    MT_FAIL(file, ":", line, ": a quoted string begins on this line and is not closed on its line; recipes keep ",
            "quoted strings on one line (write a newline as \"\\n\"); Note [Quoted strings end on their line]");
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    MT_FAIL(at(file, e.mark), ": YAML syntax error: ", e.msg);
  }
  if (documents.size() > 1)
    MT_FAIL(at(file, documents[1].Mark()), ": a second YAML document begins here; a recipe is one document ",
            "(yaml-cpp would silently drop it: Note [One YAML document])");
  return documents.empty() ? YAML::Node() : documents[0];
}

// Adds one file's top-level mapping to `tree`, checking section and key names. `base` is set to the
// file's base: value (or left empty) together with its location.
// Note [Retired recipe keys]: keys that were parsed but never did anything were removed. A recipe
// file that sets one is refused with the reason; a recipe saved in an older checkpoint (every key
// was written) still loads, the retired key ignored.
struct RetiredKey {
  const char* section;
  const char* key;
  const char* reason;
};
constexpr RetiredKey kRetiredKeys[] = {
    {"model", "arch", "the model is always GPT (the MoE variants are moe.* settings); delete the key"},
    {"moe", "ep_max", "the expert-parallel size is dist.ep; set that instead"},
};

const RetiredKey* find_retired_key(const std::string& section, const std::string& key) {
  for (const RetiredKey& r : kRetiredKeys)
    if (section == r.section && key == r.key) return &r;
  return nullptr;
}

// Where a recipe's text comes from: a file on disk (may have base:) or saved text, e.g. a checkpoint's.
enum class RecipeOrigin { kFile, kSavedText };

void read_sections(const YAML::Node& root, const std::string& file, RecipeOrigin origin, Tree& tree,
                   std::string& base, std::string& base_where) {
  const bool allow_base = origin == RecipeOrigin::kFile;
  if (root.IsNull()) return;
  MT_CHECK(root.IsMap(), at(file, root.Mark()), ": expected a mapping of sections (model:, train:, ...) at the top level");
  check_no_duplicates(root, file, "");
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string name = it->first.Scalar();
    const std::string where = at(file, it->first.Mark());
    const YAML::Node body = it->second;  // a copy: it-> is a proxy, a reference would dangle
    if (name == "base") {
      MT_CHECK(allow_base, where, ": base: is not allowed in ", file, "; only recipe files read from disk may have a base");
      MT_CHECK(body.IsScalar() && !body.Scalar().empty(), where, ": base: expected a recipe file path");
      base = body.Scalar();
      base_where = where;
      continue;
    }
    const RecipeSection* section = find_section(name);
    if (section == nullptr) {
      std::vector<std::string> valid = section_names();
      if (allow_base) valid.insert(valid.begin(), "base");
      MT_FAIL(where, ": unknown section '", name, "'", did_you_mean(name, valid), "; valid: ", join(valid));
    }
    if (body.IsNull()) continue;
    MT_CHECK(body.IsMap(), where, ": ", name, ": expected a mapping of keys (", join(key_names(*section)),
             "), got ", describe_yaml(body));
    check_no_duplicates(body, file, name + ".");
    for (auto kv = body.begin(); kv != body.end(); ++kv) {
      const std::string key = kv->first.Scalar();
      const std::string key_where = at(file, kv->first.Mark());
      if (const RetiredKey* retired = find_retired_key(name, key)) {
        MT_CHECK(origin == RecipeOrigin::kSavedText, key_where, ": ", name, ".", key,
                 " was removed (it was never used): ", retired->reason);
        continue;  // Note [Retired recipe keys]
      }
      if (find_recipe_field(name, key) == nullptr) {
        std::vector<std::string> dotted;
        for (const auto& k : key_names(*section)) dotted.push_back(name + "." + k);
        MT_FAIL(key_where, ": unknown key '", name, ".", key, "'", did_you_mean(name + "." + key, dotted),
                "; valid keys in ", name, ": ", join(key_names(*section)));
      }
      tree[name][key] = Leaf{kv->second, key_where};
    }
  }
}

// `what` names the file in errors: "recipe file", or "<file:line>: base: recipe file".
std::string read_text(const std::string& path, const std::string& what) {
  check_regular_file(path, what);  // a directory reads as nothing, a device file never ends
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in.good(), "cannot open ", what, " '", path, "'");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// A file being read, by canonical path (to detect cycles) and as named (for messages).
struct ChainLink {
  std::string canonical;
  std::string path;
};

// Reads `path` and, first, its base chain; `chain` holds the files whose base is being read, `what`
// names `path` in errors.
void read_file(const std::string& path, const std::string& what, std::vector<ChainLink>& chain, Tree& tree,
               std::vector<std::string>& sources) {
  namespace fs = std::filesystem;
  const std::string canonical = fs::weakly_canonical(fs::path(path)).string();
  const std::string text = read_text(path, what);
  const YAML::Node root = parse_yaml(text, path);
  Tree own;
  std::string base, base_where;
  read_sections(root, path, RecipeOrigin::kFile, own, base, base_where);
  if (!base.empty()) {
    fs::path base_path = fs::path(base).is_absolute() ? fs::path(base) : fs::path(path).parent_path() / base;
    const std::string base_canonical = fs::weakly_canonical(base_path).string();
    chain.push_back({canonical, path});
    auto seen = std::find_if(chain.begin(), chain.end(), [&](const ChainLink& l) { return l.canonical == base_canonical; });
    if (seen != chain.end()) {
      std::string cycle;
      for (auto it = seen; it != chain.end(); ++it) cycle += it->path + " -> ";
      MT_FAIL(base_where, ": base: cycle: ", cycle, base_path.string());
    }
    MT_CHECK(fs::exists(base_path), base_where, ": base: cannot open '", base_path.string(), "' (", base,
             " is taken relative to the directory of ", path, ")");
    read_file(base_path.string(), str_cat(base_where, ": base: recipe file"), chain, tree, sources);
    chain.pop_back();
  }
  for (auto& [section, keys] : own)  // this file's keys override its base's
    for (auto& [key, leaf] : keys) tree[section][key] = leaf;
  sources.push_back(path);
}

// ---- overrides ----

void apply_override(const std::string& text, Tree& tree) {
  const auto eq = text.find('=');
  MT_CHECK(eq != std::string::npos, kCommandLine, ": override '", text, "': expected section.key=value");
  const std::string dotted = text.substr(0, eq);
  const auto dot = dotted.find('.');
  const std::string section = dot == std::string::npos ? "" : dotted.substr(0, dot);
  const std::string key = dot == std::string::npos ? "" : dotted.substr(dot + 1);
  if (const RetiredKey* retired = find_retired_key(section, key))
    MT_FAIL(kCommandLine, ": override '", text, "': ", dotted, " was removed (it was never used): ", retired->reason);
  if (find_recipe_field(section, key) == nullptr) {
    const RecipeSection* s = find_section(section);
    std::string valid = s != nullptr ? str_cat("valid keys in ", section, ": ", join(key_names(*s)))
                                     : str_cat("valid sections: ", join(section_names()));
    MT_FAIL(kCommandLine, ": override '", text, "': unknown key '", dotted, "'", did_you_mean(dotted, dotted_names()),
            "; ", valid);
  }
  // Note [One YAML document]: yaml-cpp's Load stops after the first node, so `k=""-s1` would read as ""
  // and `k=[1,2]x` as [1, 2]; LoadAll sees the rest as a second document, which is refused.
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text.substr(eq + 1));
  } catch (const YAML::ParserException& e) {
    MT_FAIL(kCommandLine, ": override '", text, "': ", dotted, ": cannot parse the value: ", e.msg);
  }
  if (documents.size() > 1)
    MT_FAIL(kCommandLine, ": override '", text, "': ", dotted, ": text follows the value at column ",
            eq + 2 + static_cast<size_t>(documents[1].Mark().pos), " (quote the whole value if it is one string)");
  tree[section][key] = Leaf{documents.empty() ? YAML::Node() : documents[0], kCommandLine};
}

// ---- decoding values ----

std::string type_name(const RecipeField& f) {
  switch (f.type) {
    case FieldType::kInt: return str_cat("an integer ", f.range.describe());
    case FieldType::kFloat: return str_cat("a number ", f.range.describe());
    case FieldType::kBool: return "true or false";
    case FieldType::kString: return "a string";
    case FieldType::kEnum: return str_cat("one of ", join(f.choices));
    case FieldType::kIntOrList:
      return str_cat("an integer ", f.range.describe(), " or a list of integers >= 1, e.g. [4, 8]");
    case FieldType::kSources: return "a glob, or a list of {path: glob, weight: w} with weights > 0";
  }
  return "";
}

bool parse_int(const YAML::Node& n, std::int64_t& out) {
  if (!n.IsScalar() || quoted(n)) return false;
  const std::string& s = n.Scalar();
  const char* first = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(first, s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && first != end;
}

bool parse_float(const YAML::Node& n, double& out) {
  if (!n.IsScalar() || quoted(n)) return false;
  const std::string& s = n.Scalar();
  const char* first = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(first, s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && first != end && std::isfinite(out);
}

bool parse_bool(const YAML::Node& n, bool& out) {
  if (!n.IsScalar() || quoted(n)) return false;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") return out = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return out = false, true;
  return false;
}

// A glob (one source of weight 1) or a list of {path: glob, weight: w}; errors name the entry's key,
// e.g. data.train[1].weight.
std::vector<DataSource> decode_sources(const RecipeField& f, const std::string& dotted, const Leaf& leaf) {
  const YAML::Node& n = leaf.value;
  if (n.IsScalar() && !n.Scalar().empty()) return {DataSource{n.Scalar(), 1.0}};
  MT_CHECK(n.IsSequence(), leaf.where, ": ", dotted, ": expected ", type_name(f), ", got ", describe_yaml(n));
  MT_CHECK(n.size() > 0, leaf.where, ": ", dotted, ": the list is empty; expected ", type_name(f));
  std::vector<DataSource> sources;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string key = str_cat(dotted, "[", i, "]");
    const YAML::Node& e = n[i];
    MT_CHECK(e.IsMap(), leaf.where, ": ", key, ": expected a mapping {path: glob, weight: w}, got ", describe_yaml(e));
    DataSource source;
    bool has_path = false;
    for (auto kv = e.begin(); kv != e.end(); ++kv) {
      const std::string name = kv->first.Scalar();
      const YAML::Node& v = kv->second;
      if (name == "path") {
        MT_CHECK(v.IsScalar() && !v.Scalar().empty(), leaf.where, ": ", key, ".path: expected a glob of token shards, got ",
                 describe_yaml(v));
        source.path = v.Scalar();
        has_path = true;
      } else if (name == "weight") {
        MT_CHECK(parse_float(v, source.weight), leaf.where, ": ", key, ".weight: expected a number > 0, got ",
                 describe_yaml(v));
        MT_CHECK(source.weight > 0, leaf.where, ": ", key, ".weight: ", v.Scalar(), " is out of range; expected > 0");
      } else {
        MT_FAIL(leaf.where, ": ", key, ": unknown key '", name, "'", did_you_mean(name, {"path", "weight"}),
                "; valid keys: path, weight");
      }
    }
    MT_CHECK(has_path, leaf.where, ": ", key, ": missing 'path' (a glob of token shards)");
    sources.push_back(source);
  }
  return sources;
}

// Decodes one leaf into the field's neutral value, checking type and range.
FieldValue decode(const RecipeField& f, const std::string& dotted, const Leaf& leaf) {
  const YAML::Node& n = leaf.value;
  auto bad = [&](const std::string& got) {
    MT_FAIL(leaf.where, ": ", dotted, ": expected ", type_name(f), ", got ", got);
  };
  auto check_range = [&](double x, const std::string& key) {
    MT_CHECK(f.type == FieldType::kFloat || x <= INT_MAX, leaf.where, ": ", key, ": ", n.Scalar(),
             " is too large; at most ", INT_MAX);
    MT_CHECK(f.range.contains(x), leaf.where, ": ", key, ": ", n.IsScalar() ? n.Scalar() : str_cat(x),
             " is out of range; expected ", f.range.describe());
  };
  switch (f.type) {
    case FieldType::kInt: {
      std::int64_t v;
      if (!parse_int(n, v)) bad(describe_yaml(n));
      check_range(static_cast<double>(v), dotted);
      return v;
    }
    case FieldType::kFloat: {
      double v;
      if (!parse_float(n, v)) bad(describe_yaml(n));
      check_range(v, dotted);
      return v;
    }
    case FieldType::kBool: {
      bool v;
      if (!parse_bool(n, v)) bad(describe_yaml(n));
      return v;
    }
    case FieldType::kString:
      if (n.IsNull()) return std::string();
      if (!n.IsScalar()) bad(describe_yaml(n));
      return n.Scalar();
    case FieldType::kEnum: {
      if (!n.IsScalar()) bad(describe_yaml(n));
      auto it = std::find(f.choices.begin(), f.choices.end(), n.Scalar());
      MT_CHECK(it != f.choices.end(), leaf.where, ": ", dotted, ": '", n.Scalar(), "' is not valid",
               did_you_mean(n.Scalar(), f.choices), "; expected one of ", join(f.choices));
      return static_cast<std::int64_t>(it - f.choices.begin());
    }
    case FieldType::kIntOrList: {
      if (n.IsSequence()) {
        MT_CHECK(n.size() > 0, leaf.where, ": ", dotted, ": the list is empty; expected ", type_name(f));
        std::vector<std::int64_t> list;
        for (std::size_t i = 0; i < n.size(); ++i) {
          std::int64_t v;
          std::string key = str_cat(dotted, "[", i, "]");
          MT_CHECK(parse_int(n[i], v), leaf.where, ": ", key, ": expected an integer >= 1, got ", describe_yaml(n[i]));
          MT_CHECK(v >= 1 && f.range.contains(static_cast<double>(v)), leaf.where, ": ", key, ": ", v,
                   " is out of range; list entries must be in [1, ", INT_MAX, "]");
          list.push_back(v);
        }
        return list;
      }
      std::int64_t v;
      if (!parse_int(n, v)) bad(describe_yaml(n));
      check_range(static_cast<double>(v), dotted);
      return v;
    }
    case FieldType::kSources: return decode_sources(f, dotted, leaf);
  }
  MT_ASSERT(false);
}

// ---- cross-field checks ----

// The user gives two of the three (0 = derive); any that are given must be able to agree.
void check_batch_given(const TrainSection& t, const std::string& where) {
  int given = (t.global_batch > 0) + (t.micro_batch > 0) + (t.grad_accum > 0);
  MT_CHECK(given >= 2, where, ": train: give two of global_batch, micro_batch, grad_accum (0 = derive the third); got global_batch = ",
           t.global_batch, ", micro_batch = ", t.micro_batch, ", grad_accum = ", t.grad_accum);
  std::int64_t per_rank = std::int64_t{std::max(t.micro_batch, 1)} * std::max(t.grad_accum, 1);
  MT_CHECK(t.global_batch == 0 || t.global_batch % per_rank == 0, where, ": train.global_batch = ", t.global_batch,
           " is not a multiple of train.micro_batch x train.grad_accum = ", per_rank,
           " (global_batch = micro_batch x grad_accum x dp size)");
}

void check_recipe(const Recipe& r) {
  const ModelSection& m = r.model;
  MT_CHECK(m.tie_embeddings, r.where({"model.tie_embeddings"}),
           ": model.tie_embeddings = false is not implemented; only tied embeddings (the GPT-2 design) are");
  MT_CHECK(m.d_model % m.heads == 0, r.where({"model.heads", "model.d_model"}), ": model.heads = ", m.heads,
           " does not divide model.d_model = ", m.d_model);

  const MoeSection& moe = r.moe;
  if (!moe.dense()) {
    const int moe_layers = moe.moe_layer_count(m.layers);
    MT_CHECK(moe_layers > 0, r.where({"moe.every", "model.layers"}), ": moe.every = ", moe.every,
             " leaves no MoE block among model.layers = ", m.layers, " (block l is MoE iff l % every == 0)");
    if (!moe.experts_per_layer.empty())
      MT_CHECK(static_cast<int>(moe.experts_per_layer.size()) == moe_layers, r.where({"moe.experts"}),
               ": moe.experts lists ", moe.experts_per_layer.size(), " expert counts but the model has ", moe_layers,
               " MoE layers (model.layers = ", m.layers, ", moe.every = ", moe.every, "); give one count per MoE layer");
    for (int i = 0; i < moe_layers; ++i)
      MT_CHECK(moe.top_k <= moe.experts_at(i), r.where({"moe.top_k", "moe.experts"}), ": moe.top_k = ", moe.top_k,
               " exceeds the ", moe.experts_at(i), " experts of MoE layer ", i + 1);
  } else {
    MT_CHECK(moe.mlp_type == MlpType::kStandard, r.where({"moe.mlp_type"}),
             ": moe.mlp_type = residual needs MoE layers; set moe.experts > 0");
  }

  const TrainSection& t = r.train;
  check_batch_given(t, r.where({"train.global_batch", "train.micro_batch", "train.grad_accum"}));
  MT_CHECK(r.schedule.warmup_steps == 0 || r.schedule.warmup_steps < t.steps,
           r.where({"schedule.warmup_steps", "train.steps"}), ": schedule.warmup_steps = ", r.schedule.warmup_steps,
           " must be less than train.steps = ", t.steps, " (or 0 for no warmup): the schedule must warm up before it ends");
  MT_CHECK(t.sample_every == 0 || !r.data.tokenizer.empty(), r.where({"train.sample_every", "data.tokenizer"}),
           ": train.sample_every = ", t.sample_every, " needs data.tokenizer to write samples with; set it (or train.sample_every = 0)");
  MT_CHECK(t.eval_every == 0 || !r.data.val.empty(), r.where({"train.eval_every", "data.val"}), ": train.eval_every = ",
           t.eval_every, " needs validation shards; set data.val (or train.eval_every = 0)");
  MT_CHECK(!r.checkpoint.resume.empty(), r.where({"checkpoint.resume"}),
           ": checkpoint.resume: expected auto, never or a checkpoint path, got an empty string");

  const double stop = r.distill.stop_at;
  if (stop > 1.0)
    MT_CHECK(stop == std::floor(stop) && stop <= t.steps, r.where({"distill.stop_at"}), ": distill.stop_at = ", stop,
             " is read as a step (it is > 1) and must be a whole number <= train.steps = ", t.steps);
}

Recipe decode_tree(const Tree& tree, const std::string& name, std::vector<std::string> sources) {
  Recipe r;
  r.sources = std::move(sources);
  for (const auto& section : recipe_schema()) {
    auto s = tree.find(section.name);
    for (const auto& f : section.fields) {
      const std::string dotted = section.name + "." + f.name;
      const Leaf* leaf = nullptr;
      if (s != tree.end()) {
        auto k = s->second.find(f.name);
        if (k != s->second.end()) leaf = &k->second;
      }
      if (leaf == nullptr) {
        MT_CHECK(!f.required, name, ": missing required key '", dotted, "' (", f.help, "); set it in the recipe or as ",
                 dotted, "=... on the command line");
        continue;
      }
      FieldValue value = decode(f, dotted, *leaf);
      if (f.required && f.type == FieldType::kString)
        MT_CHECK(!std::get<std::string>(value).empty(), leaf->where, ": ", dotted, ": expected ", f.help,
                 ", got an empty string");
      f.set(r, value);
      r.set_at[dotted] = leaf->where;
    }
  }
  check_recipe(r);
  return r;
}

Recipe finish(Tree& tree, const std::vector<std::string>& overrides, const std::string& name,
              std::vector<std::string> sources) {
  for (const auto& o : overrides) apply_override(o, tree);
  return decode_tree(tree, name, std::move(sources));
}

}  // namespace

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  Tree tree;
  std::vector<ChainLink> chain;
  std::vector<std::string> sources;
  read_file(path, "recipe file", chain, tree, sources);
  return finish(tree, overrides, path, std::move(sources));
}

Recipe load_recipe_string(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  Tree tree;
  std::string base, base_where;
  read_sections(parse_yaml(text, name), name, RecipeOrigin::kSavedText, tree, base, base_where);
  return finish(tree, overrides, name, {name});
}

void resolve_batch(Recipe& recipe, int dp_size) {
  TrainSection& t = recipe.train;
  MT_CHECK(dp_size >= 1, "resolve_batch: expected a data-parallel size >= 1, got ", dp_size);
  const std::string name = recipe.sources.empty() ? "recipe" : recipe.sources.back();
  check_batch_given(t, name);
  const std::int64_t dp = dp_size;
  if (t.global_batch == 0) {
    const std::int64_t gb = std::int64_t{t.micro_batch} * t.grad_accum * dp;
    MT_CHECK(gb <= INT_MAX, name, ": train.global_batch = micro_batch x grad_accum x dp = ", t.micro_batch, " x ",
             t.grad_accum, " x ", dp, " is too large");
    t.global_batch = static_cast<int>(gb);
  } else if (t.grad_accum == 0 || t.micro_batch == 0) {
    const bool derive_accum = t.grad_accum == 0;
    const char* given_key = derive_accum ? "train.micro_batch" : "train.grad_accum";
    const std::int64_t given = derive_accum ? t.micro_batch : t.grad_accum;
    MT_CHECK(t.global_batch % (given * dp) == 0, name, ": train.global_batch = ", t.global_batch, " is not a multiple of ",
             given_key, " x dp size = ", given, " x ", dp, " = ", given * dp, "; cannot derive ",
             derive_accum ? "train.grad_accum" : "train.micro_batch", " (global_batch = micro_batch x grad_accum x dp)");
    (derive_accum ? t.grad_accum : t.micro_batch) = static_cast<int>(t.global_batch / (given * dp));
  } else {
    const std::int64_t product = std::int64_t{t.micro_batch} * t.grad_accum * dp;
    MT_CHECK(t.global_batch == product, name, ": train.global_batch = ", t.global_batch,
             " but train.micro_batch x train.grad_accum x dp size = ", t.micro_batch, " x ", t.grad_accum, " x ", dp,
             " = ", product, "; set one of global_batch, micro_batch, grad_accum to 0 to derive it");
  }
}

}  // namespace mt

// to_yaml: the fully resolved recipe as YAML text, every field of every section from the schema
// table with its help as a comment. Numbers are written so they read back exactly, strings
// double-quoted by json_quote (YAML's double-quoted style reads JSON's escapes), so
// load_recipe_string(to_yaml(r)) == r.
#include <algorithm>
#include <charconv>
#include <sstream>

#include "mt/core/error.h"
#include "mt/io/json.h"
#include "mt/io/recipe.h"
#include "mt/io/recipe_schema.h"

namespace mt {
namespace {

// Shortest text that parses back to the same double; always marked as a float ("1.0", not "1").
std::string format_float(double x) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  MT_ASSERT(ec == std::errc());
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string format_value(const RecipeField& f, const FieldValue& v) {
  switch (f.type) {
    case FieldType::kInt: return std::to_string(std::get<std::int64_t>(v));
    case FieldType::kFloat: return format_float(std::get<double>(v));
    case FieldType::kBool: return std::get<bool>(v) ? "true" : "false";
    case FieldType::kString: return json_quote(std::get<std::string>(v));
    case FieldType::kEnum: return f.choices.at(static_cast<std::size_t>(std::get<std::int64_t>(v)));
    case FieldType::kIntOrList:
      if (const auto* n = std::get_if<std::int64_t>(&v)) return std::to_string(*n);
      {
        std::string out = "[";
        for (auto x : std::get<std::vector<std::int64_t>>(v)) out += (out.size() > 1 ? ", " : "") + std::to_string(x);
        return out + "]";
      }
    case FieldType::kSources: {
      const auto& sources = std::get<std::vector<DataSource>>(v);
      if (sources.size() == 1 && sources[0].weight == 1.0) return json_quote(sources[0].path);
      std::string out = "[";
      for (const DataSource& s : sources)
        out += (out.size() > 1 ? ", " : "") + str_cat("{path: ", json_quote(s.path), ", weight: ", format_float(s.weight), "}");
      return out + "]";
    }
  }
  MT_ASSERT(false);
}

}  // namespace

std::string to_yaml(const Recipe& recipe) {
  constexpr std::size_t kCommentColumn = 40;
  std::ostringstream os;
  os << "# moetrain recipe, fully resolved\n";
  for (const auto& section : recipe_schema()) {
    os << section.name << ":\n";
    for (const auto& f : section.fields) {
      std::string line = "  " + f.name + ": " + format_value(f, f.get(recipe));
      line.resize(std::max(line.size() + 1, kCommentColumn), ' ');
      os << line << "# " << f.help << "\n";
    }
  }
  return os.str();
}

}  // namespace mt

// The recipe's field table: for every section and key its type, valid values and accessors.
// The one place the recipe's keys are listed: the loader, the did-you-mean hints and to_yaml all
// walk this table, so a field added here is read, checked and emitted everywhere.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "mt/io/recipe.h"

namespace mt {

enum class FieldType { kInt, kFloat, kBool, kString, kEnum, kIntOrList, kSources };

// A field's value in neutral form: kInt -> int64, kFloat -> double, kBool -> bool,
// kString -> string, kEnum -> int64 index into `choices`, kIntOrList -> int64 or vector<int64>,
// kSources -> vector<DataSource> (a glob alone is one source of weight 1).
using FieldValue =
    std::variant<std::int64_t, double, bool, std::string, std::vector<std::int64_t>, std::vector<DataSource>>;

// Valid numbers: lo <(=) x <(=) hi; for kIntOrList it bounds every element.
struct FieldRange {
  double lo;
  double hi;
  bool lo_open = false;
  bool hi_open = false;
  bool contains(double x) const;
  std::string describe() const;  // e.g. ">= 1", "> 0", "in [0, 1)"
};

struct RecipeField {
  std::string name;
  FieldType type;
  std::string help;
  FieldRange range;                  // kInt, kFloat, kIntOrList
  std::vector<std::string> choices;  // kEnum: spellings, in the order of the C++ enum
  bool required = false;             // no usable default: the recipe must set it
  FieldValue (*get)(const Recipe&);
  void (*set)(Recipe&, const FieldValue&);
};

struct RecipeSection {
  std::string name;
  std::vector<RecipeField> fields;
};

// All sections in recipe order.
const std::vector<RecipeSection>& recipe_schema();

// One field by section and key; nullptr if there is none.
const RecipeField* find_recipe_field(const std::string& section, const std::string& key);

}  // namespace mt

#pragma once
// A small XML reader for AWS Query API responses: elements, text and the five
// predefined entities plus numeric character references. No DTDs, no namespaces
// (prefixes are kept in names), attributes are skipped. Malformed input throws kb::Error.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kb::aws {

struct XmlElement {
  std::string name;
  std::string text;  // character data directly inside this element, entities decoded
  std::vector<XmlElement> children;

  // First child with this name, or nullptr.
  const XmlElement* child(std::string_view child_name) const;
  // All children with this name, in document order.
  std::vector<const XmlElement*> all(std::string_view child_name) const;
  // Text of the element reached by a '/'-separated path of child names ("instanceState/name");
  // empty when any step is missing.
  std::string get(std::string_view path) const;
  // The element at a '/'-separated path, or nullptr.
  const XmlElement* find(std::string_view path) const;
  // The <item> children of the list element at `path` (EC2's list shape), or <member> ones (ELBv2's).
  std::vector<const XmlElement*> items(std::string_view path) const;
  // First descendant (depth-first, self included) with this name, or nullptr.
  const XmlElement* descendant(std::string_view descendant_name) const;
};

// Parses one document; throws kb::Error("malformed XML response: ...") on bad input.
XmlElement parse_xml(std::string_view text);

}  // namespace kb::aws

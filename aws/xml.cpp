#include "aws/xml.h"

#include "base/error.h"

namespace kb::aws {

const XmlElement* XmlElement::child(std::string_view child_name) const {
  for (const XmlElement& c : children)
    if (c.name == child_name) return &c;
  return nullptr;
}

std::vector<const XmlElement*> XmlElement::all(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const XmlElement& c : children)
    if (c.name == child_name) out.push_back(&c);
  return out;
}

const XmlElement* XmlElement::find(std::string_view path) const {
  const XmlElement* e = this;
  while (e && !path.empty()) {
    size_t slash = path.find('/');
    e = e->child(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return e;
}

std::string XmlElement::get(std::string_view path) const {
  const XmlElement* e = find(path);
  return e ? e->text : std::string();
}

std::vector<const XmlElement*> XmlElement::items(std::string_view path) const {
  const XmlElement* list = find(path);
  if (!list) return {};
  auto out = list->all("item");
  if (out.empty()) out = list->all("member");
  return out;
}

const XmlElement* XmlElement::descendant(std::string_view descendant_name) const {
  if (name == descendant_name) return this;
  for (const XmlElement& c : children)
    if (const XmlElement* d = c.descendant(descendant_name)) return d;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text) {}

  XmlElement document() {
    skip_misc();
    if (!at('<')) fail("expected an element");
    XmlElement root = element(0);
    skip_misc();
    if (pos_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error("malformed XML response: " + why + " at offset " + std::to_string(pos_));
  }
  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool starts(std::string_view p) const { return s_.substr(pos_).starts_with(p); }
  static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  void skip_space() {
    while (pos_ < s_.size() && space(s_[pos_])) ++pos_;
  }
  void skip_past(std::string_view end) {
    size_t e = s_.find(end, pos_);
    if (e == std::string_view::npos) fail("unterminated '" + std::string(end) + "'");
    pos_ = e + end.size();
  }
  // Whitespace, the XML declaration, processing instructions, comments, a doctype.
  void skip_misc() {
    while (true) {
      skip_space();
      if (starts("<?")) skip_past("?>");
      else if (starts("<!--")) skip_past("-->");
      else if (starts("<!DOCTYPE")) skip_past(">");
      else return;
    }
  }
  std::string name() {
    size_t start = pos_;
    while (pos_ < s_.size() && !space(s_[pos_]) && s_[pos_] != '>' && s_[pos_] != '/' && s_[pos_] != '=') ++pos_;
    if (pos_ == start) fail("expected a name");
    return std::string(s_.substr(start, pos_ - start));
  }
  static void append_utf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  void entity(std::string& out) {
    size_t semi = s_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) fail("bad entity");
    std::string_view e = s_.substr(pos_ + 1, semi - pos_ - 1);
    if (e == "amp") out += '&';
    else if (e == "lt") out += '<';
    else if (e == "gt") out += '>';
    else if (e == "quot") out += '"';
    else if (e == "apos") out += '\'';
    else if (e.starts_with('#') && e.size() > 1) {
      bool hex = e[1] == 'x' || e[1] == 'X';
      std::string digits(e.substr(hex ? 2 : 1));
      if (digits.empty()) fail("bad character reference");
      unsigned long cp = 0;
      for (char c : digits) {
        int v = (c >= '0' && c <= '9') ? c - '0'
                : hex && (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : hex && (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                : -1;
        if (v < 0) fail("bad character reference");
        cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(v);
        if (cp > 0x10ffff) fail("character reference out of range");
      }
      append_utf8(out, cp);
    } else {
      fail("unknown entity '&" + std::string(e) + ";'");
    }
    pos_ = semi + 1;
  }
  // At '<': one element with everything inside it.
  XmlElement element(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    ++pos_;  // '<'
    XmlElement el;
    el.name = name();
    // Attributes: skipped, but their quoted values may hold '>' or '/'.
    while (true) {
      skip_space();
      if (pos_ >= s_.size()) fail("unterminated start tag <" + el.name + ">");
      if (starts("/>")) {
        pos_ += 2;
        return el;
      }
      if (at('>')) {
        ++pos_;
        break;
      }
      name();
      skip_space();
      if (!at('=')) fail("expected '=' in an attribute of <" + el.name + ">");
      ++pos_;
      skip_space();
      if (!at('"') && !at('\'')) fail("expected a quoted attribute value in <" + el.name + ">");
      char q = s_[pos_++];
      size_t end = s_.find(q, pos_);
      if (end == std::string_view::npos) fail("unterminated attribute value");
      pos_ = end + 1;
    }
    while (true) {
      if (pos_ >= s_.size()) fail("missing </" + el.name + ">");
      char c = s_[pos_];
      if (c == '&') {
        entity(el.text);
      } else if (c != '<') {
        el.text += c;
        ++pos_;
      } else if (starts("</")) {
        pos_ += 2;
        std::string closing = name();
        skip_space();
        if (closing != el.name) fail("</" + closing + "> closes <" + el.name + ">");
        if (!at('>')) fail("expected '>'");
        ++pos_;
        break;
      } else if (starts("<!--")) {
        skip_past("-->");
      } else if (starts("<![CDATA[")) {
        size_t start = pos_ + 9;
        skip_past("]]>");
        el.text.append(s_.substr(start, pos_ - 3 - start));
      } else if (starts("<?")) {
        skip_past("?>");
      } else {
        el.children.push_back(element(depth + 1));
      }
    }
    // Text between child elements is only indentation in these documents.
    if (!el.children.empty()) {
      bool blank = true;
      for (char t : el.text) blank = blank && space(t);
      if (blank) el.text.clear();
    }
    return el;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

XmlElement parse_xml(std::string_view text) { return Reader(text).document(); }

}  // namespace kb::aws

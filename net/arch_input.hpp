// Architectures as users write them (SPEC.md 1), and lists of them read from files or stdin.
//
// Accepted encodings of one NB201 cell (README "Architecture inputs"):
//   - an NB201 arch string  |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
//   - an NB201 index        0..15624 (decimal; mapped through the NB201 table)
//   - NASLib op indices     [4, 0, 3, 1, 4, 3] or (4, 0, 3, 1, 4, 3): six integers 0..4 in
//                           NASLib's edge order (1,2) (1,3) (1,4) (2,3) (2,4) (3,4) (nodes counted
//                           from 1) and op order skip_connect, none, nor_conv_3x3, nor_conv_1x1,
//                           avg_pool_3x3 (naslib/search_spaces/nasbench201/conversions.py)
//   - a NASLib one-hot list 30 values 0 or 1 (1.0 / 0.0 accepted): the six op indices above, each
//                           as a one-hot block of 5 (encode_adjacency_one_hot_op_indices)
// Anything else is refused with a message that names these formats; nothing is reinterpreted.
#pragma once
#include <functional>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "net/arch_table.hpp"
#include "net/nb201.hpp"
#include "net/space.hpp"
#include "net/text.hpp"

namespace hn::net {

// An input that names no architecture: what() says what is wrong and lists the formats.
class ArchInputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ArchRef {
  Arch arch;
  std::optional<int> index;  // benchmark index, when a table is available (or the input was one)
};

// One architecture in any accepted encoding of `space`. `table` may be null: then an NB201 index
// is an error that says a table is needed, and the other encodings carry no index. NATS-SSS
// accepts c1:c2:c3:c4:c5 and its index 0..32767, and always carries its index (a formula: no table
// needed; net::ArchTable refuses an SSS table that numbers otherwise).
// Throws ArchInputError; its message is valid UTF-8 whatever the input bytes.
ArchRef parse_arch_input(std::string_view text, const ArchTable* table, Space space = Space::kNb201);

// NASLib op indices (6 values) -> genes; throws ArchInputError for a value outside 0..4.
Genes genes_from_naslib_op_indices(const int (&ops)[kNumEdges]);

// One entry of an architecture list.
struct ArchLine {
  int line = 0;          // 1-based line number in the file / stream
  std::string text;      // the entry, comment and surrounding whitespace removed (valid UTF-8)
  std::string error;     // non-empty: this line is not usable text (bad bytes, too long)
};

inline constexpr size_t kMaxArchLineBytes = 64 * 1024;

// Reads a list of architectures, one per line, calling `sink` for every entry as soon as its
// line has been read (so a pipe is served line by line). A UTF-8 byte-order mark at the start is
// skipped; "\r\n" line ends are accepted; `#` starts a comment (whole line or after an entry);
// blank lines are skipped. A line with bytes that are not UTF-8 text (invalid sequences, NUL or
// other control bytes) or longer than kMaxArchLineBytes gives an entry with `error` set, and
// reading goes on. Returns the number of lines read.
int read_arch_lines(std::istream& in, const std::function<void(ArchLine&&)>& sink);

}  // namespace hn::net

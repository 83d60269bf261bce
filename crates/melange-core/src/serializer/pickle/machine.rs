//! The pickle machine, reimplemented as a pure interpreter: it reads opcodes and builds a
//! graph of plain data ([`Node`]s in an arena). It never imports a module, resolves a global
//! or calls anything; a `GLOBAL` is just a pair of strings, and the few `REDUCE` calls it
//! understands (`datetime`, `pytz`, `set`, ...) are interpreted from their arguments.
//!
//! Memory stays proportional to the input: every opcode adds at most one node, lengths are
//! checked against the remaining input before anything is allocated, and the memo is capped.

use std::collections::HashMap;

use super::ReadLimits;
use super::datetime;
use super::error::{Limit, PickleError};

/// The index of a node in the arena.
pub(crate) type Id = usize;

/// A value rebuilt from a pickle, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Set(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// A reference to a class or function, never resolved.
    Global {
        module: String,
        name: String,
    },
    /// An instance of a class, as pickle builds it: `cls.__new__(cls, *args)` then `BUILD`
    /// with its state, or `APPENDS`/`SETITEMS` for list and dict subclasses.
    Object {
        class: Id,
        args: Vec<Id>,
        state: Option<Id>,
        items: Vec<Id>,
        entries: Vec<(Id, Id)>,
    },
    /// `datetime.datetime`, `date` or `time`, as its `isoformat()`.
    Temporal(String),
    /// `datetime.timedelta`.
    TimeDelta {
        days: i64,
        seconds: i64,
        micros: i64,
    },
    /// A `tzinfo` with a fixed offset from UTC, in seconds.
    TzInfo(i64),
    /// Something that is not data; an error if a Rust field asks for it.
    Unsupported(String),
}

impl Node {
    /// A short description for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "bool",
            Node::Int(_) => "int",
            Node::Float(_) => "float",
            Node::Str(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Set(_) => "set",
            Node::Dict(_) => "dict",
            Node::Global { .. } => "global reference",
            Node::Object { .. } => "object",
            Node::Temporal(_) => "datetime",
            Node::TimeDelta { .. } => "timedelta",
            Node::TzInfo(_) => "tzinfo",
            Node::Unsupported(_) => "unsupported value",
        }
    }
}

/// The decoded pickle: an arena of nodes and the id of the top-level value.
#[derive(Debug)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub root: Id,
}

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const FLOAT: u8 = b'F';
    pub const INT: u8 = b'I';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const LONG: u8 = b'L';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const PERSID: u8 = b'P';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const STRING: u8 = b'S';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const UNICODE: u8 = b'V';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const GET: u8 = b'g';
    pub const BINGET: u8 = b'h';
    pub const INST: u8 = b'i';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const OBJ: u8 = b'o';
    pub const PUT: u8 = b'p';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const BINFLOAT: u8 = b'G';
    // Protocol 2.
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const EXT1: u8 = 0x82;
    pub const EXT2: u8 = 0x83;
    pub const EXT4: u8 = 0x84;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    // Protocol 3.
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    // Protocol 4.
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    // Protocol 5.
    pub const BYTEARRAY8: u8 = 0x96;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

/// The highest pickle protocol this reader knows.
const HIGHEST_PROTOCOL: u8 = 5;
/// The longest text line (protocol 0 opcodes) accepted.
const MAX_LINE: usize = 4096;

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    /// Where the current opcode started, for errors.
    op_at: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    limits: &'a ReadLimits,
}

/// Runs the pickle in `input` and returns the graph of its top-level value.
pub(crate) fn read(input: &[u8], limits: &ReadLimits) -> Result<Graph, PickleError> {
    if input.len() > limits.max_input_bytes {
        return Err(PickleError::LimitExceeded {
            limit: Limit::InputBytes,
            max: limits.max_input_bytes,
        });
    }
    let mut machine = Machine {
        input,
        pos: 0,
        op_at: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        limits,
    };
    let root = machine.run()?;
    Ok(Graph {
        nodes: machine.nodes,
        root,
    })
}

impl Machine<'_> {
    fn malformed(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.op_at,
            reason: reason.into(),
            near: self.near(),
        }
    }

    /// Best effort: the last string at a key position of the innermost open dict or object
    /// state under a mark, to tell where in the message a malformed stream broke.
    fn near(&self) -> Option<String> {
        let &mark = self.marks.last()?;
        let owner = *self.stack.get(mark.checked_sub(1)?)?;
        if !matches!(
            self.nodes.get(owner),
            Some(Node::Dict(_) | Node::Object { .. })
        ) {
            return None;
        }
        self.stack
            .get(mark..)?
            .iter()
            .step_by(2)
            .filter_map(|&id| match self.nodes.get(id) {
                Some(Node::Str(s)) => Some(s.clone()),
                _ => None,
            })
            .next_back()
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        if n > self.input.len() - self.pos {
            return Err(self.malformed(format!(
                "needs {n} bytes but only {} remain",
                self.input.len() - self.pos
            )));
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn length(&mut self, bytes: usize) -> Result<usize, PickleError> {
        let n = match bytes {
            1 => u64::from(self.byte()?),
            4 => u64::from(u32::from_le_bytes(self.array()?)),
            _ => u64::from_le_bytes(self.array()?),
        };
        usize::try_from(n).map_err(|_| self.malformed("length does not fit in memory"))
    }

    /// A `\n`-terminated line, without the `\n`.
    fn line(&mut self) -> Result<&[u8], PickleError> {
        let rest = &self.input[self.pos..];
        let window = &rest[..rest.len().min(MAX_LINE + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(self.malformed("unterminated text line")),
        }
    }

    fn line_str(&mut self) -> Result<String, PickleError> {
        let line = self.line()?;
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.malformed("text line is not UTF-8")),
        }
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
    }

    fn new_node(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<Id, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    /// Pops everything above the last mark, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let id = self.top()?;
        if self.memo.len() >= self.limits.max_memo_entries && !self.memo.contains_key(&key) {
            return Err(PickleError::LimitExceeded {
                limit: Limit::MemoEntries,
                max: self.limits.max_memo_entries,
            });
        }
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.malformed(format!("memo entry {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    fn node(&self, id: Id) -> &Node {
        // Ids only ever come from `new_node`/`push`, so they are in range.
        &self.nodes[id]
    }

    fn tuple_items(&self, id: Id) -> Option<Vec<Id>> {
        match self.node(id) {
            Node::Tuple(items) => Some(items.clone()),
            _ => None,
        }
    }

    fn string_of(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    fn int_of(&self, id: Id) -> Option<i64> {
        match self.node(id) {
            Node::Int(i) => i64::try_from(*i).ok(),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    fn run(&mut self) -> Result<Id, PickleError> {
        loop {
            self.op_at = self.pos;
            let code = self.byte()?;
            match code {
                op::PROTO => {
                    let version = self.byte()?;
                    if version > HIGHEST_PROTOCOL {
                        return Err(self.malformed(format!("unsupported protocol {version}")));
                    }
                }
                op::FRAME => {
                    // Frames only group opcodes for buffering; check the length and go on.
                    let n = self.length(8)?;
                    if n > self.input.len() - self.pos {
                        return Err(self.malformed("frame longer than the input"));
                    }
                }
                op::STOP => {
                    let root = self.pop()?;
                    if self.pos != self.input.len() {
                        return Err(self.malformed(format!(
                            "{} bytes after STOP",
                            self.input.len() - self.pos
                        )));
                    }
                    return Ok(root);
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.stack.len() > self.floor() {
                        self.pop()?;
                    } else if self.marks.pop().is_none() {
                        return Err(self.malformed("stack underflow"));
                    }
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let id = self.top()?;
                    self.stack.push(id);
                }

                // Memo.
                op::PUT => {
                    let line = self.line_str()?;
                    let key = line
                        .trim()
                        .parse()
                        .map_err(|_| self.malformed("bad PUT index"))?;
                    self.memo_put(key)?;
                }
                op::BINPUT => {
                    let key = self.byte()?;
                    self.memo_put(key.into())?;
                }
                op::LONG_BINPUT => {
                    let key = u32::from_le_bytes(self.array()?);
                    self.memo_put(key)?;
                }
                op::MEMOIZE => {
                    let key = u32::try_from(self.memo.len())
                        .map_err(|_| self.malformed("memo overflow"))?;
                    self.memo_put(key)?;
                }
                op::GET => {
                    let line = self.line_str()?;
                    let key = line
                        .trim()
                        .parse()
                        .map_err(|_| self.malformed("bad GET index"))?;
                    self.memo_get(key)?;
                }
                op::BINGET => {
                    let key = self.byte()?;
                    self.memo_get(key.into())?;
                }
                op::LONG_BINGET => {
                    let key = u32::from_le_bytes(self.array()?);
                    self.memo_get(key)?;
                }

                // Scalars.
                op::NONE => self.push(Node::None),
                op::NEWTRUE => self.push(Node::Bool(true)),
                op::NEWFALSE => self.push(Node::Bool(false)),
                op::INT => {
                    let line = self.line_str()?;
                    let node = match line.trim() {
                        "01" => Node::Bool(true),
                        "00" => Node::Bool(false),
                        text => Node::Int(
                            text.parse()
                                .map_err(|_| self.malformed("bad INT literal"))?,
                        ),
                    };
                    self.push(node);
                }
                op::LONG => {
                    let line = self.line_str()?;
                    let text = line.trim().trim_end_matches('L');
                    let node = match text.parse() {
                        Ok(i) => Node::Int(i),
                        Err(_)
                            if !text.is_empty()
                                && text
                                    .trim_start_matches('-')
                                    .bytes()
                                    .all(|b| b.is_ascii_digit()) =>
                        {
                            Node::Unsupported("an integer wider than 128 bits".into())
                        }
                        Err(_) => return Err(self.malformed("bad LONG literal")),
                    };
                    self.push(node);
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Node::Int(v.into()));
                }
                op::BININT1 => {
                    let v = self.byte()?;
                    self.push(Node::Int(v.into()));
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Node::Int(v.into()));
                }
                op::LONG1 | op::LONG4 => {
                    let n = if code == op::LONG1 {
                        self.length(1)?
                    } else {
                        self.length(4)?
                    };
                    let bytes = self.take(n)?;
                    let node = match long_le(bytes) {
                        Some(v) => Node::Int(v),
                        None => Node::Unsupported("an integer wider than 128 bits".into()),
                    };
                    self.push(node);
                }
                op::FLOAT => {
                    let line = self.line_str()?;
                    let v = line
                        .trim()
                        .parse()
                        .map_err(|_| self.malformed("bad FLOAT literal"))?;
                    self.push(Node::Float(v));
                }
                op::BINFLOAT => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(v));
                }

                // Strings and bytes.
                op::SHORT_BINUNICODE | op::BINUNICODE | op::BINUNICODE8 => {
                    let n = match code {
                        op::SHORT_BINUNICODE => self.length(1)?,
                        op::BINUNICODE => self.length(4)?,
                        _ => self.length(8)?,
                    };
                    let bytes = self.take(n)?;
                    let node = match std::str::from_utf8(bytes) {
                        Ok(s) => Node::Str(s.to_owned()),
                        // Python writes lone surrogates with `surrogatepass`; Rust strings
                        // cannot hold them.
                        Err(_) => Node::Unsupported("a str that is not valid UTF-8".into()),
                    };
                    self.push(node);
                }
                op::SHORT_BINSTRING | op::BINSTRING => {
                    // Python 2 `str`: Python 3 decodes it as ASCII by default.
                    let n = if code == op::SHORT_BINSTRING {
                        self.length(1)?
                    } else {
                        self.length(4)?
                    };
                    let bytes = self.take(n)?;
                    let node = match std::str::from_utf8(bytes) {
                        Ok(s) => Node::Str(s.to_owned()),
                        Err(_) => Node::Bytes(bytes.to_vec()),
                    };
                    self.push(node);
                }
                op::STRING | op::UNICODE => {
                    // Protocol 0 text: only the escape-free forms are understood.
                    let line = self.line()?.to_vec();
                    let text = if code == op::STRING {
                        match line.as_slice() {
                            [q @ (b'\'' | b'"'), inner @ .., last] if last == q => inner,
                            _ => return Err(self.malformed("bad STRING literal")),
                        }
                    } else {
                        line.as_slice()
                    };
                    let node = if text.contains(&b'\\') {
                        Node::Unsupported("a protocol 0 string with escapes".into())
                    } else {
                        // Both are Latin-1 without escapes.
                        Node::Str(text.iter().map(|&b| char::from(b)).collect())
                    };
                    self.push(node);
                }
                op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                    let n = match code {
                        op::SHORT_BINBYTES => self.length(1)?,
                        op::BINBYTES => self.length(4)?,
                        _ => self.length(8)?,
                    };
                    let bytes = self.take(n)?.to_vec();
                    self.push(Node::Bytes(bytes));
                }

                // Containers.
                op::EMPTY_LIST => self.push(Node::List(Vec::new())),
                op::EMPTY_DICT => self.push(Node::Dict(Vec::new())),
                op::EMPTY_TUPLE => self.push(Node::Tuple(Vec::new())),
                op::EMPTY_SET => self.push(Node::Set(Vec::new())),
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    if self.stack.len() < self.floor() + n {
                        return Err(self.malformed("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items));
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                op::LIST => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                op::FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items));
                }
                op::DICT => {
                    let items = self.pop_mark()?;
                    let entries = self.pairs(items)?;
                    self.push(Node::Dict(entries));
                }
                op::APPEND => {
                    let item = self.pop()?;
                    let target = self.top()?;
                    self.extend(target, vec![item])?;
                }
                op::APPENDS | op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.extend(target, items)?;
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, vec![(key, value)])?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    let entries = self.pairs(items)?;
                    let target = self.top()?;
                    self.set_items(target, entries)?;
                }

                // Classes and calls: never resolved, never called.
                op::GLOBAL => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    self.push(Node::Global { module, name });
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.string_of(module), self.string_of(name))
                    else {
                        return Err(self.malformed("STACK_GLOBAL needs two strings"));
                    };
                    let node = Node::Global {
                        module: module.to_owned(),
                        name: name.to_owned(),
                    };
                    self.push(node);
                }
                op::EXT1 | op::EXT2 | op::EXT4 => {
                    let code = match code {
                        op::EXT1 => u32::from(self.byte()?),
                        op::EXT2 => u32::from(u16::from_le_bytes(self.array()?)),
                        _ => u32::from_le_bytes(self.array()?),
                    };
                    self.push(Node::Unsupported(format!(
                        "a reference to the copyreg extension {code}"
                    )));
                }
                op::PERSID => {
                    self.line()?;
                    self.push(Node::Unsupported("a persistent id".into()));
                }
                op::BINPERSID => {
                    self.pop()?;
                    self.push(Node::Unsupported("a persistent id".into()));
                }
                op::NEXT_BUFFER => self.push(Node::Unsupported("an out-of-band buffer".into())),
                op::READONLY_BUFFER => {
                    self.top()?;
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let node = self.reduce(callable, args);
                    self.push(node);
                }
                op::NEWOBJ => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let node = self.new_object(class, args, None);
                    self.push(node);
                }
                op::NEWOBJ_EX => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let node = self.new_object(class, args, Some(kwargs));
                    self.push(node);
                }
                op::OBJ => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.malformed("OBJ without a class"));
                    }
                    let class = items.remove(0);
                    let args = self.new_node(Node::Tuple(items));
                    let node = self.new_object(class, args, None);
                    self.push(node);
                }
                op::INST => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let items = self.pop_mark()?;
                    let class = self.new_node(Node::Global { module, name });
                    let args = self.new_node(Node::Tuple(items));
                    let node = self.new_object(class, args, None);
                    self.push(node);
                }
                op::BUILD => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    match &mut self.nodes[target] {
                        Node::Object { state: slot, .. } if slot.is_none() => *slot = Some(state),
                        other => {
                            let what = format!("BUILD (setting the state) of a {}", other.kind());
                            *other = Node::Unsupported(what);
                        }
                    }
                }
                other => {
                    return Err(self.malformed(format!("unknown opcode 0x{other:02x}")));
                }
            }
        }
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>, PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("odd number of items for a dict"));
        }
        Ok(items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn extend(&mut self, target: Id, new: Vec<Id>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::List(items) | Node::Set(items) => items.extend(new),
            Node::Object { items, .. } => items.extend(new),
            Node::Unsupported(_) => {}
            other => {
                let what = format!("appending to a {}", other.kind());
                *other = Node::Unsupported(what);
            }
        }
        Ok(())
    }

    fn set_items(&mut self, target: Id, new: Vec<(Id, Id)>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::Dict(entries) => entries.extend(new),
            Node::Object { entries, .. } => entries.extend(new),
            Node::Unsupported(_) => {}
            other => {
                let what = format!("setting items of a {}", other.kind());
                *other = Node::Unsupported(what);
            }
        }
        Ok(())
    }

    fn new_object(&mut self, class: Id, args: Id, kwargs: Option<Id>) -> Node {
        let Node::Global { module, name } = self.node(class) else {
            return Node::Unsupported(format!(
                "an instance of a {} (not a class)",
                self.node(class).kind()
            ));
        };
        let Some(args) = self.tuple_items(args) else {
            return Node::Unsupported(format!("an instance of `{module}.{name}` with bad args"));
        };
        if let Some(kwargs) = kwargs
            && !matches!(self.node(kwargs), Node::Dict(entries) if entries.is_empty())
        {
            return Node::Unsupported(format!(
                "an instance of `{module}.{name}` built with keyword arguments"
            ));
        }
        Node::Object {
            class,
            args,
            state: None,
            items: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// `callable(*args)` for the callables whose result is plain data, interpreted from the
    /// arguments; anything else becomes an [`Node::Unsupported`] (never an error here, so a
    /// field the Rust type ignores can hold it).
    fn reduce(&mut self, callable: Id, args: Id) -> Node {
        let Node::Global { module, name } = self.node(callable) else {
            return Node::Unsupported(format!("a call of a {}", self.node(callable).kind()));
        };
        let (module, name) = (module.clone(), name.clone());
        let Some(args) = self.tuple_items(args) else {
            return Node::Unsupported(format!("a call of `{module}.{name}` with bad arguments"));
        };
        let unsupported = || {
            Node::Unsupported(format!(
                "a call of `{module}.{name}` with arguments this reader does not interpret"
            ))
        };
        let args_nodes: Vec<&Node> = args.iter().map(|&id| self.node(id)).collect();
        match (module.as_str(), name.as_str(), args_nodes.as_slice()) {
            ("datetime", "datetime", [Node::Bytes(state), tz @ ..]) if tz.len() <= 1 => {
                let Some(offset) = self.offset(tz.first().copied()) else {
                    return Node::Unsupported(format!(
                        "a datetime with a tzinfo of unknown offset ({})",
                        tz.first().map_or("?", |n| n.kind())
                    ));
                };
                match datetime::format_datetime(state, offset) {
                    Some(text) => Node::Temporal(text),
                    None => Node::Unsupported("an invalid datetime state".into()),
                }
            }
            ("datetime", "date", [Node::Bytes(state)]) => match datetime::format_date(state) {
                Some(text) => Node::Temporal(text),
                None => Node::Unsupported("an invalid date state".into()),
            },
            ("datetime", "time", [Node::Bytes(state), tz @ ..]) if tz.len() <= 1 => {
                let Some(offset) = self.offset(tz.first().copied()) else {
                    return Node::Unsupported("a time with a tzinfo of unknown offset".into());
                };
                match datetime::format_time(state, offset) {
                    Some(text) => Node::Temporal(text),
                    None => Node::Unsupported("an invalid time state".into()),
                }
            }
            ("datetime", "timedelta", [_, _, _]) => {
                match (
                    self.int_of(args[0]),
                    self.int_of(args[1]),
                    self.int_of(args[2]),
                ) {
                    (Some(days), Some(seconds), Some(micros)) => Node::TimeDelta {
                        days,
                        seconds,
                        micros,
                    },
                    _ => unsupported(),
                }
            }
            (
                "datetime",
                "timezone",
                [
                    Node::TimeDelta {
                        days,
                        seconds,
                        micros,
                    },
                    rest @ ..,
                ],
            ) if rest.len() <= 1 && *micros == 0 => {
                Node::TzInfo(days.saturating_mul(86_400).saturating_add(*seconds))
            }
            ("pytz", "_UTC", []) => Node::TzInfo(0),
            ("pytz", "_p", [Node::Str(zone)]) if zone == "UTC" => Node::TzInfo(0),
            ("pytz", "_p", [Node::Str(_), Node::Int(offset), ..]) => match i64::try_from(*offset) {
                Ok(offset) => Node::TzInfo(offset),
                Err(_) => unsupported(),
            },
            ("builtins" | "__builtin__", "set" | "frozenset", []) => Node::Set(Vec::new()),
            (
                "builtins" | "__builtin__",
                "set" | "frozenset",
                [Node::List(items) | Node::Tuple(items) | Node::Set(items)],
            ) => Node::Set(items.clone()),
            ("builtins" | "__builtin__", "bytearray" | "bytes", []) => Node::Bytes(Vec::new()),
            ("builtins" | "__builtin__", "bytearray" | "bytes", [Node::Bytes(b)]) => {
                Node::Bytes(b.clone())
            }
            ("builtins" | "__builtin__", "bytearray" | "bytes", [Node::Str(s), Node::Str(enc)])
            | ("_codecs", "encode", [Node::Str(s), Node::Str(enc)])
                if enc == "latin1" || enc == "latin-1" =>
            {
                match s.chars().map(|c| u8::try_from(u32::from(c))).collect() {
                    Ok(bytes) => Node::Bytes(bytes),
                    Err(_) => unsupported(),
                }
            }
            ("decimal", "Decimal", [Node::Str(s)]) => Node::Str(s.clone()),
            (
                "copy_reg" | "copyreg",
                "_reconstructor",
                [_, Node::Global { module: m, name: n }, Node::None],
            ) if (m == "builtins" || m == "__builtin__") && n == "object" => {
                let empty = self.new_node(Node::Tuple(Vec::new()));
                self.new_object(args[0], empty, None)
            }
            // A class called without arguments builds an instance like NEWOBJ does (for
            // example `collections.OrderedDict()` before its SETITEMS).
            (_, _, []) => {
                let empty = self.new_node(Node::Tuple(Vec::new()));
                self.new_object(callable, empty, None)
            }
            _ => unsupported(),
        }
    }

    /// The offset in seconds of an optional tzinfo argument: `Some(None)` when naive, `None`
    /// when the tzinfo is of a kind whose offset is not known.
    fn offset(&self, tz: Option<&Node>) -> Option<Option<i64>> {
        match tz {
            None | Some(Node::None) => Some(None),
            Some(Node::TzInfo(offset)) => Some(Some(*offset)),
            Some(_) => None,
        }
    }
}

/// Decodes a little-endian two's-complement integer of up to 16 bytes.
fn long_le(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        // Longer encodings may still be small when padded with sign bytes.
        let (low, high) = bytes.split_at(16);
        let fill = if low[15] & 0x80 != 0 { 0xff } else { 0 };
        if high.iter().any(|&b| b != fill) {
            return None;
        }
        return long_le(low);
    }
    if bytes.is_empty() {
        return Some(0);
    }
    let negative = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut buf = if negative { [0xff; 16] } else { [0; 16] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(i128::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_decoding() {
        assert_eq!(long_le(&[]), Some(0));
        assert_eq!(long_le(&[0xff]), Some(-1));
        assert_eq!(long_le(&[0x00, 0x80]), Some(-32768));
        assert_eq!(long_le(&[0xff, 0x00]), Some(255));
        let mut big = vec![0u8; 17];
        big[16] = 1;
        assert_eq!(long_le(&big), None);
        assert_eq!(long_le(&[0xff; 20]), Some(-1));
    }
}

//! One `gemm` call over burn-flex's buffers, shared by the linear layers' products and
//! attention: the matrices of strided tensors read in place ([`Matrix`]), outputs
//! written into blocks of buffers that nothing fills first ([`Destination`],
//! [`Unwritten`]).

use burn::backend::flex::FlexTensor;

/// A `[rows, cols]` matrix inside a tensor's buffer: its first element and strides.
#[derive(Clone, Copy)]
pub(crate) struct Matrix {
    first: *const f32,
    row_stride: isize,
    col_stride: isize,
}

/// A row-major `[rows, cols]` matrix to write, inside a buffer shared by tasks that
/// write disjoint matrices.
#[derive(Clone, Copy)]
pub(crate) struct Destination {
    pub(crate) first: *mut f32,
    pub(crate) row_stride: isize,
}

// SAFETY: a `Destination` is shared by the tasks of one parallel loop, within which
// the buffer it points into stays alive and each task writes its own block only.
unsafe impl Send for Destination {}
unsafe impl Sync for Destination {}

impl Matrix {
    /// The matrix of an f32 tensor's last two dimensions at `index` in the leading
    /// ones (`&[]` for a 2-D tensor, `&[b, h]` for pair `(b, h)` of a 4-D one).
    pub(crate) fn of(t: &FlexTensor, index: &[usize]) -> Self {
        let s = t.layout().strides();
        let dims = s.len();
        assert_eq!(index.len() + 2, dims, "matrix index for a {dims}-D tensor");
        for (&i, &size) in index.iter().zip(t.layout().shape().iter()) {
            assert!(
                i < size,
                "matrix index {index:?} outside {:?}",
                t.layout().shape()
            );
        }
        let offset = t.layout().start_offset() as isize
            + index
                .iter()
                .zip(s)
                .map(|(&i, &stride)| i as isize * stride)
                .sum::<isize>();
        let storage: &[f32] = t.storage();
        // SAFETY: the offset of an element of the tensor lies inside its storage.
        let first = unsafe { storage.as_ptr().offset(offset) };
        Self {
            first,
            row_stride: s[dims - 2],
            col_stride: s[dims - 1],
        }
    }

    /// A contiguous row-major `[rows, cols]` matrix.
    pub(crate) fn dense(values: &[f32], cols: usize) -> Self {
        Self {
            first: values.as_ptr(),
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    pub(crate) fn transposed(self) -> Self {
        Self {
            first: self.first,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

impl Destination {
    /// The row-major `[rows, cols]` block that starts `offset` values after `self`.
    ///
    /// # Safety
    /// The block must lie inside the buffer `self` points into.
    pub(crate) unsafe fn block(self, offset: usize, cols: usize) -> Self {
        Self {
            // SAFETY: as the caller promises.
            first: unsafe { self.first.add(offset) },
            row_stride: cols as isize,
        }
    }

    /// The block's `len` values as a slice.
    ///
    /// # Safety
    /// All `len` values must have been written, and no other thread may touch them
    /// while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn written(&self, len: usize) -> &mut [f32] {
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.first, len) }
    }
}

/// A buffer of `len` values that products fill before anything reads them: until
/// [`Unwritten::into_written`] its memory is reached through raw pointers only.
pub(crate) struct Unwritten {
    values: Vec<f32>,
    len: usize,
}

impl Unwritten {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            values: Vec::with_capacity(len),
            len,
        }
    }

    /// The buffer's start, for tasks that locate their own blocks in it.
    pub(crate) fn start(&mut self) -> Destination {
        Destination {
            first: self.values.as_mut_ptr(),
            row_stride: 0,
        }
    }

    /// # Safety
    /// Every one of the `len` values must have been written.
    pub(crate) unsafe fn into_written(mut self) -> Vec<f32> {
        // SAFETY: as the caller promises; the capacity is at least `len`.
        unsafe { self.values.set_len(self.len) };
        self.values
    }
}

/// `out [m, n] = scale · lhs [m, k] · rhs [k, n]`, or `out += …` with `accumulate`;
/// with `parallelism`, gemm splits the product over rayon's pool.
///
/// # Safety
/// `out` must address `m` rows of `n` values that no other thread touches, and with
/// `accumulate` hold initialised values; `lhs` and `rhs` must point into live
/// tensors with their strides.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    out: Destination,
    m: usize,
    n: usize,
    k: usize,
    lhs: Matrix,
    rhs: Matrix,
    scale: f32,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: as the caller promises; without `accumulate` (`read_dst = false`)
    // gemm writes every value of `out` and reads none.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.first,
            1,
            out.row_stride,
            accumulate,
            lhs.first,
            lhs.col_stride,
            lhs.row_stride,
            rhs.first,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

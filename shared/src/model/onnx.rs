//! Writes a trained [`Network`] as ONNX (opset 13) with tract's own prost
//! types, so what tract reads back is exactly what was written; and reads the weights
//! of a file this module wrote back into a [`Network`] ([`from_onnx`]), which is what a
//! retrain starts from.
//!
//! Graph: `input float32 [N, 1, 28, 28]` → layers → `logits float32 [N, 10]`.
//! Both lines take the image-shaped input (the MLP starts with a `Flatten`), so
//! the predict code feeds every line the same tensor. Conv weights are already
//! in ONNX's `[out, in, k, k]` layout; dense weights are `[out, in]` and go to
//! `Gemm` with `transB = 1`.

use super::nn::{Layer, Network};
use prost::Message;
use tract_onnx::pb;

pub const INPUT_NAME: &str = "input";
pub const OUTPUT_NAME: &str = "logits";
const OPSET: i64 = 13;
/// ONNX IR version 8 (ONNX 1.10): read by tract and every current onnxruntime.
const IR_VERSION: i64 = 8;

/// `image_shape` is the per-sample input shape (`[1, 28, 28]`), which the
/// first layer must be able to read.
pub fn to_onnx(net: &Network, image_shape: [usize; 3], doc: &str) -> Vec<u8> {
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut current = INPUT_NAME.to_owned();
    let mut flat = false;
    let last = net.layers.len().saturating_sub(1);
    for (i, (layer, params)) in net.layers.iter().zip(net.layer_params()).enumerate() {
        let output = if i == last {
            OUTPUT_NAME.to_owned()
        } else {
            format!("t{i}")
        };
        match *layer {
            Layer::Dense { inputs, outputs } => {
                if !flat {
                    let flattened = format!("t{i}_flat");
                    nodes.push(node(
                        "Flatten",
                        &[&current],
                        &flattened,
                        vec![int("axis", 1)],
                    ));
                    current = flattened;
                    flat = true;
                }
                let (w, b) = params.split_at(outputs * inputs);
                let (wn, bn) = (format!("dense{i}.weight"), format!("dense{i}.bias"));
                initializers.push(tensor(&wn, &[outputs, inputs], w));
                initializers.push(tensor(&bn, &[outputs], b));
                nodes.push(node(
                    "Gemm",
                    &[&current, &wn, &bn],
                    &output,
                    vec![int("transB", 1)],
                ));
            }
            Layer::Conv {
                channels_in,
                channels_out,
                kernel,
                ..
            } => {
                let (w, b) = params.split_at(channels_out * channels_in * kernel * kernel);
                let (wn, bn) = (format!("conv{i}.weight"), format!("conv{i}.bias"));
                initializers.push(tensor(&wn, &[channels_out, channels_in, kernel, kernel], w));
                initializers.push(tensor(&bn, &[channels_out], b));
                let pad = ((kernel - 1) / 2) as i64;
                let k = kernel as i64;
                nodes.push(node(
                    "Conv",
                    &[&current, &wn, &bn],
                    &output,
                    vec![
                        ints("kernel_shape", &[k, k]),
                        ints("pads", &[pad; 4]),
                        ints("strides", &[1, 1]),
                    ],
                ));
            }
            Layer::Relu { .. } => nodes.push(node("Relu", &[&current], &output, vec![])),
            Layer::MaxPool { .. } => nodes.push(node(
                "MaxPool",
                &[&current],
                &output,
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            )),
        }
        current = output;
    }
    let [c, h, w] = image_shape;
    let graph = pb::GraphProto {
        name: "inferloop".into(),
        node: nodes,
        initializer: initializers,
        input: vec![value_info(INPUT_NAME, &[None, Some(c), Some(h), Some(w)])],
        output: vec![value_info(OUTPUT_NAME, &[None, Some(net.output_len())])],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "inferloop".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Why a file's weights cannot be read into a network of the given layers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model.onnx: {0}")]
pub struct OnnxError(String);

/// The weights of a model [`to_onnx`] wrote, into a network of `layers` (the line's
/// architecture): every parameter tensor by the name and shape the writer gives it,
/// so a file of another architecture is refused rather than misread.
pub fn from_onnx(bytes: &[u8], layers: Vec<Layer>) -> Result<Network, OnnxError> {
    let model = pb::ModelProto::decode(bytes).map_err(|e| OnnxError(format!("not ONNX: {e}")))?;
    let graph = model.graph.ok_or_else(|| OnnxError("no graph".into()))?;
    let tensors: std::collections::HashMap<&str, &pb::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let read = |name: &str, dims: &[usize]| -> Result<Vec<f32>, OnnxError> {
        let tensor = tensors
            .get(name)
            .ok_or_else(|| OnnxError(format!("no tensor {name}")))?;
        let expected: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        if tensor.dims != expected {
            return Err(OnnxError(format!(
                "{name} has shape {:?}, the architecture's is {expected:?}",
                tensor.dims
            )));
        }
        if tensor.data_type != pb::tensor_proto::DataType::Float as i32 {
            return Err(OnnxError(format!("{name} is not float32")));
        }
        let len: usize = dims.iter().product();
        let values: Vec<f32> = if !tensor.raw_data.is_empty() {
            tensor
                .raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            tensor.float_data.clone()
        };
        if values.len() != len {
            return Err(OnnxError(format!(
                "{name} holds {} values, its shape {len}",
                values.len()
            )));
        }
        Ok(values)
    };
    let mut params = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        match *layer {
            Layer::Dense { inputs, outputs } => {
                params.extend(read(&format!("dense{i}.weight"), &[outputs, inputs])?);
                params.extend(read(&format!("dense{i}.bias"), &[outputs])?);
            }
            Layer::Conv {
                channels_in,
                channels_out,
                kernel,
                ..
            } => {
                params.extend(read(
                    &format!("conv{i}.weight"),
                    &[channels_out, channels_in, kernel, kernel],
                )?);
                params.extend(read(&format!("conv{i}.bias"), &[channels_out])?);
            }
            Layer::Relu { .. } | Layer::MaxPool { .. } => {}
        }
    }
    // Every tensor read, and none besides: a file with more is another architecture.
    let parameter_tensors = layers
        .iter()
        .filter(|l| matches!(l, Layer::Dense { .. } | Layer::Conv { .. }))
        .count()
        * 2;
    if graph.initializer.len() != parameter_tensors {
        return Err(OnnxError(format!(
            "{} tensors in the file, the architecture has {parameter_tensors}",
            graph.initializer.len()
        )));
    }
    Ok(Network { layers, params })
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: output.to_owned(),
        op_type: op.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        attribute,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_owned(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_owned(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[usize], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        // raw_data (little-endian) is the compact form every reader accepts.
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// `None` is the symbolic batch dimension `N`.
fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Some(n) => Value::DimValue(*n as i64),
                None => Value::DimParam("N".into()),
            }),
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Line;
    use crate::model::infer::{Model, onnx_to_nnef};
    use crate::model::nn::Rng;
    use crate::model::train::architecture;

    #[test]
    fn weights_read_back_are_the_weights_written() {
        for line in [Line::V1, Line::V2] {
            let net = Network::new(architecture(line), &mut Rng::new(7));
            let bytes = to_onnx(&net, [1, 28, 28], "test");
            let read = from_onnx(&bytes, architecture(line)).unwrap();
            assert_eq!(read.params, net.params, "{line:?}");
            // The other line's architecture is refused, not misread.
            let other = if line == Line::V1 { Line::V2 } else { Line::V1 };
            assert!(from_onnx(&bytes, architecture(other)).is_err());
        }
        assert!(from_onnx(b"not a model", architecture(Line::V1)).is_err());
    }

    #[test]
    fn the_shipped_models_read_into_their_architectures() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (line, dir, parameters) in [(Line::V1, "v1", 203_530), (Line::V2, "v2", 207_178)] {
            let bytes = std::fs::read(root.join("models").join(dir).join("model.onnx")).unwrap();
            let net = from_onnx(&bytes, architecture(line)).unwrap();
            assert_eq!(net.params.len(), parameters);
            // Written again, the same bytes but for the doc string: the same weights.
            let again = to_onnx(&net, [1, 28, 28], "again");
            assert_eq!(
                from_onnx(&again, architecture(line)).unwrap().params,
                net.params
            );
        }
    }

    /// Random (untrained) networks of both lines, written and read back by tract:
    /// tract's logits must equal the trainer's forward pass.
    #[test]
    fn tract_reads_back_what_the_trainer_computes() {
        for line in [Line::V1, Line::V2] {
            let mut rng = Rng::new(42);
            let net = Network::new(architecture(line), &mut rng);
            // As predict serves it: converted to NNEF first.
            let model =
                Model::load(&onnx_to_nnef(&to_onnx(&net, [1, 28, 28], "test")).unwrap()).unwrap();
            let mut scratch = net.scratch();
            for _ in 0..5 {
                let mut input = [0.0f32; 784];
                input.iter_mut().for_each(|v| *v = rng.uniform());
                let ours = net.forward(&input, &mut scratch).to_vec();
                let theirs = model.logits(&input).unwrap();
                for (a, b) in ours.iter().zip(theirs.iter()) {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
                        "{line:?}: {ours:?} vs {theirs:?}"
                    );
                }
            }
        }
    }
}

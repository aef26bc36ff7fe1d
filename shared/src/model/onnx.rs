//! Writes a trained [`Network`] as ONNX (opset 13) with tract's own prost
//! types, so what tract reads back is exactly what was written.
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

#!/usr/bin/python3
"""make_series.py - write a realistic 300-instance MR series for bench/parse.

Usage: bench/make_series.py OUTDIR [--count N]

A sagittal 3D T1 (MPRAGE-like) series as a 3 T scanner would send it: 512x512 MONOCHROME2,
BitsAllocated 16 / BitsStored 12 / HighBit 11, unsigned; Explicit VR Little Endian Part 10
files (128-byte preamble, DICM, file meta group); 140 top-level attributes per instance, 33 of
them private, 158 elements counting those in sequence items (patient, study, series, equipment,
MR acquisition, image plane and pixel modules, SOP common); sequences (ProcedureCodeSequence,
ReferencedImageSequence, ReferencedPerformedProcedureStepSequence, RequestAttributesSequence with
a nested ScheduledProtocolCodeSequence) and vendor private blocks (creator "SIEMENS MR HEADER"
in groups 0019 and 0051, "SIEMENS CSA HEADER" in group 0029 with CSA-formatted OB blobs of 18 and
24 KiB, as Siemens scanners send them).

Everything is derived from a fixed seed: two runs write byte-identical files. UIDs are 2.25
UIDs derived from the seed. Pixel data is random but smooth: a head-like ellipsoid modulated by
low-frequency noise that varies smoothly from slice to slice, plus a little fine noise.

If OUTDIR/.complete exists and names the same parameters, nothing is written (the series is
already there). The marker is written last, so an interrupted run is redone.
"""
import argparse
import os
import struct
import sys
import uuid

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

SEED = 20240611
ROWS = COLS = 512
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MARKER = ".complete"
FORMAT_VERSION = "mr-series v2"


def seeded_uid(seed, *parts):
    """Deterministic 2.25 UID (PS3.5 B.2: from a UUID; here a name-based UUID of the seed and a name).
    (pydicom's generate_uid(prefix=None) ignores entropy_srcs and returns a random UUID.)"""
    name = "/".join([str(seed)] + [str(p) for p in parts])
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, "radshare-bench/" + name).int)


def uid(*parts):
    return seeded_uid(SEED, *parts)


def already_there(outdir, tag, who):
    """True when OUTDIR/.complete says tag (the data is there); a stale marker is removed."""
    marker = os.path.join(outdir, MARKER)
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == tag:
                print(f"{who}: {outdir}: already there ({tag.strip()})")
                return True
        os.remove(marker)
    return False


def mark_done(outdir, tag):
    """Written last, so an interrupted run is redone."""
    with open(os.path.join(outdir, MARKER), "w") as f:
        f.write(tag)


# ---------------------------------------------------------------------------------------------
# Pixel data: smooth random volume
# ---------------------------------------------------------------------------------------------

def upsample(grid, n):
    """Bilinear upsampling of a small 2-D grid to n x n."""
    g = grid.shape[0]
    x = np.linspace(0, g - 1, n)
    i0 = np.floor(x).astype(int).clip(0, g - 2)
    t = x - i0
    rows = grid[i0, :] * (1 - t)[:, None] + grid[i0 + 1, :] * t[:, None]
    return rows[:, i0] * (1 - t)[None, :] + rows[:, i0 + 1] * t[None, :]


class Volume:
    """Slices of a smooth synthetic head, generated one at a time."""

    def __init__(self, count, rng):
        self.count = count
        self.rng = rng
        self.key_every = 12                      # a new low-frequency field every 12 slices
        nkeys = count // self.key_every + 2
        self.keys = [rng.standard_normal((17, 17)) for _ in range(nkeys)]
        self.fine = [rng.standard_normal((65, 65)) for _ in range(nkeys)]
        yy, xx = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
        self.yy = (yy - ROWS / 2) / (ROWS / 2)
        self.xx = (xx - COLS / 2) / (COLS / 2)

    def slice(self, k):
        f = k / self.key_every
        a = int(f)
        t = f - a
        low = upsample(self.keys[a] * (1 - t) + self.keys[a + 1] * t, ROWS)
        mid = upsample(self.fine[a] * (1 - t) + self.fine[a + 1] * t, ROWS)
        # head: an ellipsoid whose cross-section shrinks towards the edges of the slab
        z = (k - self.count / 2) / (self.count / 2 * 1.15)
        r2 = (self.xx / 0.72) ** 2 + (self.yy / 0.86) ** 2 + z * z
        head = np.clip(1.0 - r2, 0, None) ** 0.35                 # soft edge
        skull = np.exp(-((np.sqrt(r2) - 0.93) / 0.025) ** 2)      # bright rim (scalp fat)
        img = head * (1700 + 420 * low + 160 * mid) + 2300 * skull
        img += 18 * np.abs(self.rng.standard_normal((ROWS, COLS)))  # Rician-ish background noise
        return np.clip(img, 0, 4095).astype(np.uint16)


# ---------------------------------------------------------------------------------------------
# Siemens-like CSA header blob ("SV10" format)
# ---------------------------------------------------------------------------------------------

def csa_blob(elements):
    """elements: list of (name, vr, [values]). Returns the CSA2 ("SV10") encoding."""
    out = bytearray(b"SV10" + b"\x04\x03\x02\x01")
    out += struct.pack("<II", len(elements), 77)
    for name, vr, values in elements:
        nm = name.encode("ascii")[:63].ljust(64, b"\0")
        nitems = max(6, len(values)) if values else 6
        out += nm + struct.pack("<i", len(values)) + vr.encode("ascii").ljust(4, b"\0")
        out += struct.pack("<iii", 3 if vr in ("DS", "FD") else 6, nitems, 77 if values else 205)
        for i in range(nitems):
            v = (values[i].encode("ascii") + b"\0") if i < len(values) else b""
            out += struct.pack("<iiii", len(v), 77, len(v), 77)
            out += v + b"\0" * ((4 - len(v) % 4) % 4)
    return bytes(out)


def csa_image_header(k, pos):
    e = [
        ("EchoLinePosition", "IS", ["256"]), ("EchoColumnPosition", "IS", ["256"]),
        ("EchoPartitionPosition", "IS", ["96"]), ("UsedChannelMask", "UL", ["1048575"]),
        ("Actual3DImaPartNumber", "IS", [str(k)]), ("ICE_Dims", "LO", [f"X_1_1_1_1_1_1_1_1_1_1_{k + 1}_1_1"]),
        ("B_value", "IS", []), ("Filter1", "IS", []), ("Filter2", "IS", []),
        ("ProtocolSliceNumber", "IS", ["0"]), ("RealDwellTime", "IS", ["3100"]),
        ("PixelFile", "UN", []), ("PixelFileName", "UN", []),
        ("SliceMeasurementDuration", "DS", ["329937.50000000"]),
        ("SequenceMask", "UL", ["134217728"]), ("AcquisitionMatrixText", "SH", ["512p*512"]),
        ("MeasuredFourierLines", "IS", ["0"]), ("FlowEncodingDirection", "IS", []),
        ("FlowVenc", "FD", []), ("PhaseEncodingDirectionPositive", "IS", ["1"]),
        ("NumberOfImagesInMosaic", "US", []), ("DiffusionGradientDirection", "FD", []),
        ("ImageGroup", "US", []), ("SliceNormalVector", "FD", ["1.00000000", "0.00000000", "0.00000000"]),
        ("DiffusionDirectionality", "CS", []), ("TimeAfterStart", "DS", ["0.00000000"]),
        ("FlipAngle", "DS", []), ("SequenceName", "SH", []), ("RepetitionTime", "DS", []),
        ("EchoTime", "DS", []), ("NumberOfAverages", "DS", []), ("VoxelThickness", "DS", []),
        ("VoxelPhaseFOV", "DS", []), ("VoxelReadoutFOV", "DS", []),
        ("VoxelPositionSag", "DS", [f"{pos[0]:.8f}"]), ("VoxelPositionCor", "DS", [f"{pos[1]:.8f}"]),
        ("VoxelPositionTra", "DS", [f"{pos[2]:.8f}"]), ("VoxelNormalSag", "DS", ["1.00000000"]),
        ("VoxelNormalCor", "DS", ["0.00000000"]), ("VoxelNormalTra", "DS", ["0.00000000"]),
        ("VoxelInPlaneRot", "DS", ["0.00000000"]), ("ImagePositionPatient", "DS", [f"{p:.8f}" for p in pos]),
        ("ImageOrientationPatient", "DS", ["0.00000000", "1.00000000", "0.00000000",
                                           "0.00000000", "0.00000000", "-1.00000000"]),
        ("PixelSpacing", "DS", ["0.50000000", "0.50000000"]), ("SliceLocation", "DS", [f"{pos[0]:.8f}"]),
        ("SliceThickness", "DS", []), ("SpectrumTextRegionLabel", "SH", []),
        ("Comp_Algorithm", "IS", []), ("Comp_Blended", "IS", []), ("Comp_ManualAdjusted", "IS", []),
        ("Comp_AutoParam", "LT", []), ("Comp_AdjustedParam", "LT", []), ("Comp_JobID", "LT", []),
        ("FMRIStimulInfo", "IS", []), ("FlowEncodingDirectionString", "SH", []),
        ("RepetitionTimeEffective", "DS", []), ("CsiImagePositionPatient", "FD", []),
        ("CsiImageOrientationPatient", "FD", []), ("CsiPixelSpacing", "FD", []),
        ("CsiSliceLocation", "FD", []), ("CsiSliceThickness", "FD", []),
        ("OriginalSeriesNumber", "IS", []), ("OriginalImageNumber", "IS", []),
        ("ImaAbsTablePosition", "SL", ["0", "0", "-1305"]), ("NonPlanarImage", "US", ["0"]),
        ("MoCoQMeasure", "US", []), ("LQAlgorithm", "SH", []), ("SlicePosition_PCS", "FD", [f"{p:.8f}" for p in pos]),
        ("RBMoCoTrans", "FD", []), ("RBMoCoRot", "FD", []), ("MultistepIndex", "IS", []),
        ("ImaRelTablePosition", "IS", ["0", "0", "0"]), ("ImaCoilString", "LO", ["HC1-7"]),
        ("RFSWDDataType", "SH", ["predicted"]), ("GSWDDataType", "SH", ["predicted"]),
        ("NormalizeManipulated", "IS", []), ("ImaPATModeText", "LO", ["p2"]),
        ("B_matrix", "FD", []), ("BandwidthPerPixelPhaseEncode", "FD", ["130.20800781"]),
        ("FMRIStimulLevel", "FD", []), ("MosaicRefAcqTimes", "FD", []), ("AutoInlineImageFilterEnabled", "IS", []),
        ("QCData", "FD", []), ("ExamLandmarks", "LO", []), ("ExamDataRole", "ST", []),
        ("MRDiffusion", "ST", []), ("RealWorldValueMapping", "ST", []), ("DataSetInfo", "ST", []),
        ("UsedChannelString", "UT", ["XXXXXXXXXXXXXXXXXXXX"]), ("PhaseContrastN4", "ST", []),
        ("MRVelocityEncoding", "ST", []), ("VelocityEncodingDirectionN4", "FD", []),
        ("ImageType4MF", "CS", ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]),
        ("ImageHistory", "ST", ["ChannelMixing:ND=true_CMM=1_CDM=1", "ACC3D", "NormalizeAlgo"]),
        ("SequenceInfo", "ST", []), ("ImageTypeVisible", "CS", ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]),
        ("DistortionCorrectionType", "CS", ["ND"]), ("ImageFilterType", "ST", []),
        ("SliceArrayConcatenations", "IS", ["1"]),
    ]
    return csa_blob(e)


def phoenix_protocol(rng):
    """An ASCCONV-like protocol text, as found in the CSA series header (MrPhoenixProtocol)."""
    lines = ["### ASCCONV BEGIN object=MrProtDataImpl@MrProtocolData version=51130001 "
             "converter=%MEASCONST%/ConverterList/Prot_Converter.txt ###",
             "ulVersion\t = 0x14b44b6",
             'tSequenceFileName\t = ""%SiemensSeq%\\tfl""',
             'tProtocolName\t = ""t1_mprage_sag_p2_iso""',
             'tReferenceImage0\t = ""' + uid("ref", 0) + '""',
             "lScanRegionPosTra\t = 0",
             "ucScanRegionPosValid\t = 0x1",
             "ucEnableNoiseAdjust\t = 0x1",
             "sProtConsistencyInfo.tBaselineString\t = \"N4_VE11C_LATEST_20160120\"",
             "sProtConsistencyInfo.flNominalB0\t = 2.89362",
             "sProtConsistencyInfo.flGMax\t = 26",
             "sProtConsistencyInfo.flRiseTime\t = 5.88",
             "sProtConsistencyInfo.lMaximumNofRxReceiverChannels\t = 64",
             "sGRADSPEC.sEddyCompensationX.aflAmplitude[0]\t = 0.00316329",
             "sGRADSPEC.sEddyCompensationX.aflTimeConstant[0]\t = 0.795922",
             "sRXSPEC.lGain\t = 1",
             "sRXSPEC.alDwellTime[0]\t = 3100",
             "sTXSPEC.asNucleusInfo[0].tNucleus\t = \"1H\"",
             "sTXSPEC.asNucleusInfo[0].lFrequency\t = 123251815",
             "sTXSPEC.asNucleusInfo[0].flReferenceAmplitude\t = 261.371",
             "sTXSPEC.aRFPULSE[0].tName\t = \"ExtExciteUndefined\"",
             "sTXSPEC.aRFPULSE[0].flAmplitude\t = 26.1374",
             "sSliceArray.asSlice[0].dThickness\t = 179.2",
             "sSliceArray.asSlice[0].dPhaseFOV\t = 256",
             "sSliceArray.asSlice[0].dReadoutFOV\t = 256",
             "sSliceArray.asSlice[0].sNormal.dSag\t = 1",
             "sSliceArray.lSize\t = 1",
             "sSliceArray.ucMode\t = 0x4",
             "sKSpace.ucDimension\t = 0x4",
             "sKSpace.lBaseResolution\t = 256",
             "sKSpace.lPhaseEncodingLines\t = 256",
             "sKSpace.lPartitions\t = 300",
             "sKSpace.lImagesPerSlab\t = 300",
             "sKSpace.dPhaseResolution\t = 1",
             "sKSpace.dSliceResolution\t = 1",
             "sKSpace.ucPhasePartialFourier\t = 0x10",
             "sKSpace.ucSlicePartialFourier\t = 0x10",
             "sKSpace.unReordering\t = 0x1",
             "sFastImaging.lTurboFactor\t = 1",
             "sFastImaging.lSegments\t = 1",
             "sPat.lAccelFactPE\t = 2",
             "sPat.lRefLinesPE\t = 24",
             "sPat.ucPATMode\t = 0x2",
             "alTR[0]\t = 2300000",
             "alTI[0]\t = 900000",
             "alTE[0]\t = 2320",
             "adFlipAngleDegree[0]\t = 8",
             "lContrasts\t = 1",
             "lAverages\t = 1",
             "lRepetitions\t = 0",
             "lTotalScanTimeSec\t = 321",
             'sCoilSelectMeas.aRxCoilSelectData[0].asList[0].sCoilElementID.tCoilID\t = ""HeadNeck_20""',
             ]
    # Coil elements and adjustment values: the long tail every real protocol has.
    for i in range(20):
        lines += [
            f'sCoilSelectMeas.aRxCoilSelectData[0].asList[{i}].sCoilElementID.tCoilID\t = ""HeadNeck_20""',
            f"sCoilSelectMeas.aRxCoilSelectData[0].asList[{i}].sCoilElementID.lCoilCopy\t = 1",
            f'sCoilSelectMeas.aRxCoilSelectData[0].asList[{i}].sCoilElementID.tElement\t = ""H{i // 4 + 1}{i % 4 + 1}""',
            f"sCoilSelectMeas.aRxCoilSelectData[0].asList[{i}].lElementSelected\t = 1",
            f"sCoilSelectMeas.aRxCoilSelectData[0].asList[{i}].lRxChannelConnected\t = {i + 1}",
        ]
    for i in range(120):
        lines.append(f"sAdjData.sAdjVolume.aflShimCoeff[{i}]\t = {rng.normal(0, 50):.6f}")
    lines.append("### ASCCONV END ###")
    return "\n".join(lines) + "\n"


def csa_series_header(phoenix):
    e = [
        ("UsedPatientWeight", "IS", ["72"]), ("NumberOfPrescans", "IS", ["0"]),
        ("TransmitterCalibration", "DS", ["261.37100000"]), ("PhaseGradientAmplitude", "DS", ["0.00000000"]),
        ("ReadoutGradientAmplitude", "DS", ["0.00000000"]), ("SelectionGradientAmplitude", "DS", ["0.00000000"]),
        ("GradientDelayTime", "DS", ["36.00000000", "35.00000000", "31.00000000"]),
        ("RfWatchdogMask", "IS", ["0"]), ("RfPowerErrorIndicator", "DS", []),
        ("SarWholeBody", "DS", []), ("Sed", "DS", ["1000000.00000000", "211.88100001", "211.88100001"]),
        ("SequenceFileOwner", "SH", ["SIEMENS"]), ("Stim_mon_mode", "IS", ["2"]),
        ("Operation_mode_flag", "IS", ["2"]), ("dBdt_max", "DS", ["0.00000000"]),
        ("t_puls_max", "DS", ["0.00000000"]), ("dBdt_thresh", "DS", ["0.00000000"]),
        ("dBdt_limit", "DS", ["0.00000000"]), ("SW_korr_faktor", "DS", ["1.00000000"]),
        ("Stim_max_online", "DS", ["2.42718697", "18.29790306", "0.51009619"]),
        ("Stim_max_ges_norm_online", "DS", ["0.46813312"]), ("Stim_lim", "DS", ["45.73000336", "24.94000053", "40.55999756"]),
        ("Stim_faktor", "DS", ["1.00000000"]), ("CoilForGradient", "SH", ["void"]),
        ("CoilForGradient2", "SH", ["AS82"]), ("CoilTuningReflection", "DS", []),
        ("CoilId", "IS", ["255", "83", "238", "238", "238", "238", "238", "238", "238", "238", "238"]),
        ("MiscSequenceParam", "IS", ["0"] * 20), ("MrProtocolVersion", "IS", ["51130001"]),
        ("DataFileName", "LO", []), ("RepresentativeImage", "UI", []), ("PositivePCSDirections", "SH", ["+LPH"]),
        ("RelTablePosition", "IS", ["0", "0", "0"]), ("ReadoutOS", "FD", ["2.00000000"]),
        ("LongModelName", "LO", ["NUMARIS/4"]), ("SliceArrayConcatenations", "IS", ["1"]),
        ("SliceResolution", "DS", ["1.00000000"]), ("AbsTablePosition", "IS", ["-1305"]),
        ("AutoAlignMatrix", "FL", []), ("MeasurementIndex", "FL", []), ("CoilString", "LO", ["HC1-7"]),
        ("PATModeText", "LO", ["p2"]), ("PatReinPattern", "ST", ["1;HFS;72.00;;O;0;0;-1305;1"]),
        ("MrPhoenixProtocol", "UN", [phoenix]),
    ]
    return csa_blob(e)


# ---------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------

def code_item(value, scheme, meaning):
    it = Dataset()
    it.CodeValue = value
    it.CodingSchemeDesignator = scheme
    it.CodeMeaning = meaning
    return it


def make_instance(k, count, ids, pixels, blobs):
    n = k + 1
    sop_uid = uid("instance", n)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.3.12.2.1107.5.2"
    meta.ImplementationVersionName = "MR_VE11C"
    meta.SourceApplicationEntityTitle = "MRC45123"

    ds = FileDataset(f"MR{n:04d}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False

    # acquisition timing: 300 partitions over ~5 min 21 s
    acq_s = 10 * 3600 + 14 * 60 + 3 + k * 321.0 / count
    acq_time = "%02d%02d%09.6f" % (acq_s // 3600, acq_s % 3600 // 60, acq_s % 60)
    x = -89.7 + k * 0.6                          # sagittal slab, 0.6 mm partitions, L -> R
    pos = [x, -118.44231, 137.81237]

    # SOP common / general image
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]
    ds.InstanceCreationDate = "20240611"
    ds.InstanceCreationTime = acq_time
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240611"
    ds.StudyTime = "100212.418000"
    ds.SeriesTime = "101403.126000"
    ds.AcquisitionTime = acq_time
    ds.ContentTime = acq_time
    ds.AccessionNumber = "A20240611-0042"
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS"
    ds.InstitutionName = "Hopital Saint-Exemple"
    ds.InstitutionAddress = "12 Rue de la Sante,Lyon,District,FR,69003"
    ds.ReferringPhysicianName = "Martin^Claire^^Dr"
    ds.StationName = "MRC45123"
    ds.StudyDescription = "Neuro^Brain routine"
    ds.ProcedureCodeSequence = Sequence([code_item("MRHEAD", "99HSE", "MR Brain without contrast")])
    ds.SeriesDescription = "t1_mprage_sag_p2_iso"
    ds.InstitutionalDepartmentName = "Radiologie"
    ds.PerformingPhysicianName = "Durand^Paul"
    ds.OperatorsName = "TECH^MRI"
    ds.ManufacturerModelName = "Prisma_fit"
    rpps = Dataset()
    rpps.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.3"
    rpps.ReferencedSOPInstanceUID = ids["mpps"]
    ds.ReferencedPerformedProcedureStepSequence = Sequence([rpps])
    refs = []
    for i in range(3):                            # the three-plane localizer
        r = Dataset()
        r.ReferencedSOPClassUID = MR_IMAGE_STORAGE
        r.ReferencedSOPInstanceUID = uid("localizer", i)
        refs.append(r)
    ds.ReferencedImageSequence = Sequence(refs)
    ds.DerivationDescription = ""

    # patient
    ds.PatientName = "DUPONT^JEANNE^MARIE"
    ds.PatientID = "PID-0012345"
    ds.IssuerOfPatientID = "HSE"
    ds.PatientBirthDate = "19640307"
    ds.PatientSex = "F"
    ds.PatientAge = "060Y"
    ds.PatientSize = "1.65"
    ds.PatientWeight = "72"
    ds.PatientIdentityRemoved = "NO"

    # Siemens private block 1 (group 0019)
    blk = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    blk.add_new(0x08, "CS", "IMAGE NUM 4")
    blk.add_new(0x09, "LO", "1.0")
    blk.add_new(0x0B, "DS", "329937.5")
    blk.add_new(0x0F, "SH", "Fast")
    blk.add_new(0x11, "SH", "No")
    blk.add_new(0x12, "SL", [0, 0, -1305])
    blk.add_new(0x13, "SL", [0, 0, -1305])
    blk.add_new(0x14, "IS", ["0", "0", "0"])
    blk.add_new(0x15, "FD", pos)
    blk.add_new(0x17, "DS", "1")
    blk.add_new(0x18, "IS", "3100")

    # MR acquisition (group 0018)
    ds.BodyPartExamined = "HEAD"
    ds.ScanningSequence = ["GR", "IR"]
    ds.SequenceVariant = ["SK", "SP", "MP"]
    ds.ScanOptions = "IR"
    ds.MRAcquisitionType = "3D"
    ds.SequenceName = "*tfl3d1_16ns"
    ds.AngioFlag = "N"
    ds.SliceThickness = "0.6"
    ds.RepetitionTime = "2300"
    ds.EchoTime = "2.32"
    ds.InversionTime = "900"
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = "123.251815"
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = "3"
    ds.SpacingBetweenSlices = "0.6"
    ds.NumberOfPhaseEncodingSteps = "255"
    ds.EchoTrainLength = "1"
    ds.PercentSampling = "100"
    ds.PercentPhaseFieldOfView = "100"
    ds.PixelBandwidth = "200"
    ds.DeviceSerialNumber = "166018"
    ds.SoftwareVersions = "syngo MR E11"
    ds.ProtocolName = "t1_mprage_sag_p2_iso"
    ds.TransmitCoilName = "Body"
    ds.AcquisitionMatrix = [0, 512, 512, 0]
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.FlipAngle = "8"
    ds.VariableFlipAngleFlag = "N"
    ds.SAR = "0.04669523629798"
    ds.dBdt = "0"
    ds.PatientPosition = "HFS"

    # study / series / image plane (group 0020)
    ds.StudyInstanceUID = ids["study"]
    ds.SeriesInstanceUID = ids["series"]
    ds.StudyID = "42"
    ds.SeriesNumber = "5"
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(n)
    ds.ImagePositionPatient = [f"{p:.5f}".rstrip("0").rstrip(".") for p in pos]
    ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
    ds.FrameOfReferenceUID = ids["for"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{x:.5f}".rstrip("0").rstrip(".")
    ds.ImageComments = ""

    # image pixel (group 0028)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ROWS
    ds.Columns = COLS
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SmallestImagePixelValue = int(pixels.min())
    ds.LargestImagePixelValue = int(pixels.max())
    ds["SmallestImagePixelValue"].VR = "US"
    ds["LargestImagePixelValue"].VR = "US"
    ds.WindowCenter = "1100"
    ds.WindowWidth = "2200"
    ds.WindowCenterWidthExplanation = "Algo1"

    # Siemens CSA block (group 0029)
    csa = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    csa.add_new(0x08, "CS", "IMAGE NUM 4")
    csa.add_new(0x09, "LO", "20240611")
    csa.add_new(0x10, "OB", csa_image_header(k, pos))
    csa.add_new(0x18, "CS", "MR")
    csa.add_new(0x19, "LO", "20240611")
    csa.add_new(0x20, "OB", blobs["series"])

    # request / performed procedure step (groups 0032, 0040)
    ds.RequestingPhysician = "Martin^Claire^^Dr"
    ds.RequestedProcedureDescription = "IRM cerebrale"
    ds.PerformedProcedureStepStartDate = "20240611"
    ds.PerformedProcedureStepStartTime = "100212.511000"
    ds.PerformedProcedureStepID = "MR20240611100212"
    ds.PerformedProcedureStepDescription = "Neuro^Brain routine"
    req = Dataset()
    req.RequestedProcedureID = "RP-0042"
    req.ScheduledProcedureStepID = "SPS-0042"
    req.ScheduledProcedureStepDescription = "IRM cerebrale sans injection"
    req.ScheduledProtocolCodeSequence = Sequence([code_item("MRHEAD", "99HSE", "MR Brain without contrast")])
    ds.RequestAttributesSequence = Sequence([req])

    # Siemens private block 2 (group 0051)
    b51 = ds.private_block(0x0051, "SIEMENS MR HEADER", create=True)
    b51.add_new(0x08, "CS", "IMAGE NUM 4")
    b51.add_new(0x09, "LO", "1.0")
    b51.add_new(0x0A, "LO", "TA 05:21")
    b51.add_new(0x0B, "LO", "512p*512")
    b51.add_new(0x0C, "LO", "FoV 256*256")
    b51.add_new(0x0E, "LO", "Sag>Cor(0.3)>Tra(-0.1)")
    b51.add_new(0x0F, "LO", "HC1-7")
    b51.add_new(0x11, "LO", "p2")
    b51.add_new(0x12, "SH", "TP 0")
    b51.add_new(0x13, "SH", "+LPH")
    b51.add_new(0x16, "LO", "p2 M/ND/NORM")
    b51.add_new(0x17, "SH", "SL 0.6")
    b51.add_new(0x19, "LO", "A1/PFP/SK")

    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def count_elements(ds):
    total = 0
    for e in ds:
        total += 1
        if e.VR == "SQ":
            for item in e.value:
                total += count_elements(item)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--count", type=int, default=300)
    args = ap.parse_args()

    tag = f"{FORMAT_VERSION} seed={SEED} count={args.count} {ROWS}x{COLS}\n"
    if already_there(args.outdir, tag, "make_series"):
        return 0
    os.makedirs(args.outdir, exist_ok=True)
    for old in os.listdir(args.outdir):          # a stale or partial series: start afresh
        if old.startswith("MR") and old.endswith(".dcm"):
            os.remove(os.path.join(args.outdir, old))

    rng = np.random.default_rng(SEED)
    ids = {"study": uid("study"), "series": uid("series"), "for": uid("frame-of-reference"),
           "mpps": uid("mpps")}
    blobs = {"series": csa_series_header(phoenix_protocol(rng))}
    vol = Volume(args.count, rng)
    for k in range(args.count):
        ds = make_instance(k, args.count, ids, vol.slice(k), blobs)
        if k == 0:
            print(f"make_series: {count_elements(ds)} elements per instance "
                  f"(+{len(ds.file_meta)} meta), writing {args.count} files to {args.outdir}")
        ds.save_as(os.path.join(args.outdir, f"MR{k + 1:04d}.dcm"), write_like_original=False)
    mark_done(args.outdir, tag)
    print(f"make_series: done ({args.count} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

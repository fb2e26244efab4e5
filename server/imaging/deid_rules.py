"""Attribute actions of the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Keyword tables for the attributes the profile removes (X) or empties (Z). Besides these tables the
de-identifier applies rules by kind, which cover attributes the tables do not name:

- all private tags, all curve groups (50xx) and overlay groups (60xx) are removed;
- every person name (VR PN) is removed, every date/time (DA, DT, TM) is removed (no longitudinal
  temporal information is retained), except the type 2 attributes emptied below;
- every UID (VR UI) that is not a well-known DICOM UID (SOP classes, transfer syntaxes, coding
  schemes) is replaced (U);
- the whole patient group 0010 is removed except the emptied type 2 patient attributes;
- public attributes unknown to the data dictionary, and values of VR UN, are removed because
  their content cannot be judged.

``tests/server/imaging/test_deid.py`` checks that every keyword here is in pydicom's dictionary, so a
misspelt keyword cannot silently disable a rule.
"""

from __future__ import annotations

# Emptied (Z): attributes the image IODs require to be present (type 2), kept with zero length.
EMPTY = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "ReferringPhysicianName",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ContentDate",
        "ContentTime",
        "ContentCreatorName",
    }
)

# Removed (X).
REMOVE = frozenset(
    {
        # patient
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientMotherBirthName",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientTelecomInformation",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientComments",
        "PatientInstitutionResidence",
        "PatientInsurancePlanCodeSequence",
        "PatientPrimaryLanguageCodeSequence",
        "PatientReligiousPreference",
        "PatientState",
        "PatientSexNeutered",
        "IssuerOfPatientID",
        "EthnicGroup",
        "Occupation",
        "MilitaryRank",
        "BranchOfService",
        "MedicalRecordLocator",
        "MedicalAlerts",
        "Allergies",
        "CountryOfResidence",
        "RegionOfResidence",
        "SmokingStatus",
        "PregnancyStatus",
        "LastMenstrualDate",
        "SpecialNeeds",
        "AdditionalPatientHistory",
        "ResponsiblePerson",
        "ResponsibleOrganization",
        "ReferencedPatientSequence",
        "ReferencedPatientAliasSequence",
        "ReferencedPatientPhotoSequence",
        # visit / admission / service episode
        "AdmissionID",
        "IssuerOfAdmissionIDSequence",
        "AdmittingDiagnosesDescription",
        "AdmittingDiagnosesCodeSequence",
        "DischargeDiagnosisDescription",
        "ServiceEpisodeID",
        "ServiceEpisodeDescription",
        "IssuerOfServiceEpisodeIDSequence",
        "CurrentPatientLocation",
        "VisitComments",
        # physicians, operators, other persons
        "PhysiciansOfRecord",
        "PhysiciansOfRecordIdentificationSequence",
        "PerformingPhysicianName",
        "PerformingPhysicianIdentificationSequence",
        "NameOfPhysiciansReadingStudy",
        "PhysiciansReadingStudyIdentificationSequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "ReferringPhysicianIdentificationSequence",
        "RequestingPhysician",
        "ScheduledPerformingPhysicianName",
        "ScheduledPerformingPhysicianIdentificationSequence",
        "OperatorsName",
        "OperatorIdentificationSequence",
        "PersonName",
        "PersonAddress",
        "PersonTelephoneNumbers",
        "PersonTelecomInformation",
        "PersonIdentificationCodeSequence",
        "HumanPerformerName",
        "HumanPerformerOrganization",
        "ActualHumanPerformersSequence",
        "ScheduledHumanPerformersSequence",
        "VerifyingObserverName",
        "VerifyingObserverSequence",
        "VerifyingObserverIdentificationCodeSequence",
        "VerifyingOrganization",
        "AuthorObserverSequence",
        "ParticipantSequence",
        "ContentCreatorIdentificationCodeSequence",
        "OrderEnteredBy",
        "OrderEntererLocation",
        "OrderCallbackPhoneNumber",
        "OrderCallbackTelecomInformation",
        "NamesOfIntendedRecipientsOfResults",
        "IntendedRecipientsOfResultsIdentificationSequence",
        "DistributionName",
        "DistributionAddress",
        # institution, station, device
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "InstitutionalDepartmentTypeCodeSequence",
        "InstitutionCodeSequence",
        "StationName",
        "DeviceSerialNumber",
        "DetectorID",
        "GantryID",
        "PlateID",
        "CassetteID",
        "ModifyingDeviceID",
        "PerformedStationName",
        "PerformedStationAETitle",
        "PerformedStationNameCodeSequence",
        "PerformedStationGeographicLocationCodeSequence",
        "PerformedLocation",
        "ScheduledStationName",
        "ScheduledStationAETitle",
        "ScheduledStationNameCodeSequence",
        "ScheduledStationGeographicLocationCodeSequence",
        "ScheduledStudyLocation",
        "ScheduledStudyLocationAETitle",
        "ScheduledProcedureStepLocation",
        "RequestedProcedureLocation",
        "CustodialOrganizationSequence",
        # study, request, procedure descriptions and identifiers
        "StudyDescription",
        "SeriesDescription",
        "ProtocolName",
        "StudyComments",
        "RequestAttributesSequence",
        "RequestingService",
        "RequestedProcedureDescription",
        "RequestedProcedureID",
        "RequestedProcedureComments",
        "RequestedContrastAgent",
        "ReasonForStudy",
        "ReasonForTheRequestedProcedure",
        "ReasonForTheImagingServiceRequest",
        "ImagingServiceRequestComments",
        "ScheduledProcedureStepDescription",
        "ScheduledProcedureStepID",
        "PerformedProcedureStepID",
        "PerformedProcedureStepDescription",
        "CommentsOnThePerformedProcedureStep",
        "ReferencedStudySequence",
        "ReferencedPerformedProcedureStepSequence",
        "StudyIDIssuer",
        "PreMedication",
        # free text and comments
        "ImageComments",
        "FrameComments",
        "AcquisitionComments",
        "DerivationDescription",
        "IdentifyingComments",
        "TextComments",
        "TextString",
        "ImagePresentationComments",
        "ResultsComments",
        "InterpretationText",
        "InterpretationDiagnosisDescription",
        "Impressions",
        "ContributionDescription",
        "TopicTitle",
        "TopicSubject",
        "TopicAuthor",
        "TopicKeywords",
        "Arbitrary",
        "ContentSequence",
        "AcquisitionContextSequence",
        "ConfidentialityConstraintOnPatientDataDescription",
        # clinical trial identifiers
        "ClinicalTrialSponsorName",
        "ClinicalTrialProtocolID",
        "ClinicalTrialProtocolName",
        "ClinicalTrialSiteID",
        "ClinicalTrialSiteName",
        "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID",
        "ClinicalTrialTimePointID",
        "ClinicalTrialTimePointDescription",
        "ClinicalTrialCoordinatingCenterName",
        # embedded images, signatures and audit trails that may carry the removed values
        "IconImageSequence",
        "DigitalSignaturesSequence",
        "ReferencedDigitalSignatureSequence",
        "ReferencedSOPInstanceMACSequence",
        "ModifiedAttributesSequence",
        "OriginalAttributesSequence",
        "DataSetTrailingPadding",
        "TimezoneOffsetFromUTC",
    }
)

# Patient-group (0010) attributes that survive the group-wide removal.
PATIENT_GROUP_KEEP = frozenset({"PatientName", "PatientID", "PatientBirthDate", "PatientSex"})

# UIDs that name a kind of thing rather than an instance: never replaced, even when a vendor's
# private class UID is not in the dictionary.
CLASS_UID_KEYWORDS = frozenset(
    {
        "SOPClassUID",
        "MediaStorageSOPClassUID",
        "ReferencedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "SOPClassesInStudy",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "ContextUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
    }
)

# Coded value of DeidentificationMethodCodeSequence for this profile (PS3.16 CID 7050).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
# DeidentificationMethod is LO: at most 64 characters.
METHOD_DESCRIPTION = "PS3.15 Annex E Basic Application Confidentiality Profile"

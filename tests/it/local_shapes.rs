//! The local cloud answers network, Key Vault, storage, SQL and Data Lake Store requests in
//! the shapes real Azure answered them in the Az PowerShell recordings
//! (`powershell/{network,keyvault,storage,sql,datalakestore}/*.json`, listed in
//! tests/fixtures/SOURCES): default fields, back-references, status codes and
//! long-running-operation headers. The request bodies below are the recorded ones, with the
//! names and ids of this cloud.

use serde_json::{Value, json};

use crate::lab::{Lab, Resp};
use crate::local_datalake::{DATALAKE_SCOPE, client, hdfs, store};

const NET: &str = "api-version=2018-04-01";

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str().map(str::to_lowercase)).collect())
        .unwrap_or_default()
}

fn group(lab: &Lab, rg: &str) -> String {
    let p = lab.rg_path(rg);
    assert!(lab.op("PUT", &format!("{p}?api-version=2016-02-01"), Some(&json!({"location": "westus"}))).status < 300);
    p
}

/// An asynchronous network delete as Azure answers it: 202 with both operation headers.
fn delete_202(lab: &Lab, path: &str) -> Resp {
    let r = lab.op("DELETE", &format!("{path}?{NET}"), None);
    assert_eq!(r.status, 202, "DELETE {path}: {}", r.body);
    assert!(r.header("azure-asyncoperation").is_some() && r.header("location").is_some(), "{:?}", r.headers);
    assert!(r.header("retry-after").is_some());
    r
}

#[test]
fn network_resources_carry_azures_defaults_and_back_references() {
    let lab = Lab::start();
    let rg = group(&lab, "net");
    let net = format!("{rg}/providers/Microsoft.Network");
    // TestNetworkSecurityGroupCRUD.json: an empty group gets Azure's six default rules.
    let nsg_id = format!("{net}/networkSecurityGroups/ps1068");
    let nsg = lab.op(
        "PUT",
        &format!("{nsg_id}?{NET}"),
        Some(&json!({"properties": {"securityRules": [], "defaultSecurityRules": []}, "location": "West US"})),
    );
    assert_eq!(nsg.status, 201, "{}", nsg.body);
    let rules = &nsg.body["properties"]["defaultSecurityRules"];
    assert_eq!(
        names(rules),
        [
            "AllowVnetInBound",
            "AllowAzureLoadBalancerInBound",
            "DenyAllInBound",
            "AllowVnetOutBound",
            "AllowInternetOutBound",
            "DenyAllOutBound"
        ]
    );
    let by = |n: &str| rules.as_array().and_then(|a| a.iter().find(|r| r["name"] == n)).cloned().unwrap_or_default();
    assert_eq!(
        (by("DenyAllInBound")["properties"]["priority"].clone(), by("DenyAllInBound")["properties"]["access"].clone()),
        (json!(65500), json!("Deny"))
    );
    assert_eq!(by("AllowInternetOutBound")["properties"]["destinationAddressPrefix"], "Internet");
    assert_eq!(by("AllowAzureLoadBalancerInBound")["properties"]["sourceAddressPrefix"], "AzureLoadBalancer");
    assert_eq!(by("AllowVnetOutBound")["properties"]["direction"], "Outbound");
    assert!(by("AllowVnetInBound")["etag"].as_str().is_some_and(|e| e.starts_with("W/")));
    assert_eq!(by("AllowVnetInBound")["properties"]["sourcePortRanges"], json!([]));
    let guid = nsg.body["properties"]["resourceGuid"].clone();

    // TestVirtualNetworkSubnetCRUD.json / TestNetworkSecurityGroupCRUD.json: subnets get an
    // etag and `delegations`; a subnet's NSG is stored as a reference and the NSG lists it.
    let vnet_id = format!("{net}/virtualNetworks/ps1681");
    let vnet_body = json!({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [{"properties": {"addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": nsg_id, "properties": {"securityRules": []}, "tags": {}}, "serviceEndpoints": []}, "name": "ps2392"}]}, "location": "West US"});
    let vnet = lab.op("PUT", &format!("{vnet_id}?{NET}"), Some(&vnet_body));
    assert_eq!(vnet.status, 201, "{}", vnet.body);
    assert!(vnet.header("azure-asyncoperation").is_some());
    let subnet = &vnet.body["properties"]["subnets"][0];
    assert!(subnet["etag"].as_str().is_some_and(|e| e.starts_with("W/\"")), "{subnet}");
    assert_eq!(subnet["properties"]["delegations"], json!([]));
    assert_eq!(subnet["properties"]["networkSecurityGroup"], json!({ "id": nsg_id }), "only the id is kept");
    let got = lab.op("GET", &format!("{nsg_id}?{NET}"), None);
    assert_eq!(ids(&got.body["properties"]["subnets"]), [format!("{vnet_id}/subnets/ps2392").to_lowercase()]);
    assert_eq!(got.body["properties"]["resourceGuid"], guid);
    assert!(got.body["properties"].get("networkInterfaces").is_none(), "no NIC uses it yet");
    // An update keeps the group's resource GUID and its rules stay Azure's.
    let again = lab.op(
        "PUT",
        &format!("{nsg_id}?{NET}"),
        Some(&json!({"properties": {"securityRules": []}, "location": "westus"})),
    );
    assert_eq!((again.status, &again.body["properties"]["resourceGuid"]), (200, &guid));
    assert_eq!(names(&again.body["properties"]["defaultSecurityRules"]).len(), 6);
    assert_eq!(ids(&again.body["properties"]["subnets"]).len(), 1, "back-references survive the group's own PUT");

    // TestPublicIpAddressCRUD.json: a DNS label gets its FQDN.
    let pip_id = format!("{net}/publicIPAddresses/ps8844");
    let pip = lab.op(
        "PUT",
        &format!("{pip_id}?{NET}"),
        Some(&json!({"properties": {"publicIPAllocationMethod": "Dynamic", "dnsSettings": {"domainNameLabel": "ps5346"}, "ipTags": []}, "zones": [], "location": "West US"})),
    );
    assert_eq!(pip.status, 201, "{}", pip.body);
    assert_eq!(pip.body["properties"]["dnsSettings"]["fqdn"], "ps5346.westus.cloudapp.azure.com");
    assert_eq!(pip.body["properties"]["idleTimeoutInMinutes"], 4);
    // A sku sent by name gets its tier (compute recordings, 2017-10-01).
    let basic = lab.op(
        "PUT",
        &format!("{net}/publicIPAddresses/basic?api-version=2017-10-01"),
        Some(&json!({"sku": {"name": "Basic"}, "properties": {"publicIPAllocationMethod": "Dynamic"}, "location": "westus"})),
    );
    assert_eq!(basic.body["sku"], json!({"name": "Basic", "tier": "Regional"}), "{}", basic.body);
    delete_202(&lab, &format!("{net}/publicIPAddresses/basic"));

    // TestNetworkInterfaceCRUD.json: the NIC's configuration is listed by its subnet, its
    // public IP and its NSG; its own fields are filled.
    let nic_id = format!("{net}/networkInterfaces/ps8714");
    let nic = lab.op(
        "PUT",
        &format!("{nic_id}?{NET}"),
        Some(&json!({"properties": {"ipConfigurations": [{"properties": {"privateIPAllocationMethod": "Dynamic", "subnet": {"properties": {"serviceEndpoints": []}, "id": format!("{vnet_id}/subnets/ps2392")}, "primary": true, "publicIPAddress": {"properties": {"ipTags": []}, "id": pip_id, "tags": {}}}, "name": "ipconfig1"}], "networkSecurityGroup": {"id": nsg_id}, "enableAcceleratedNetworking": false, "enableIPForwarding": false}, "location": "West US"})),
    );
    assert_eq!(nic.status, 201, "{}", nic.body);
    let cfg = &nic.body["properties"]["ipConfigurations"][0];
    assert_eq!(cfg["properties"]["publicIPAddress"], json!({ "id": pip_id }), "only the id is kept");
    assert_eq!(cfg["properties"]["privateIPAddress"], "10.0.1.4");
    assert!(cfg["etag"].is_string());
    let suffix = nic.body["properties"]["dnsSettings"]["internalDomainNameSuffix"].as_str().unwrap_or_default();
    assert!(suffix.ends_with(".dx.internal.cloudapp.net") && suffix.len() > 30, "{suffix}");
    let cfg_id = format!("{nic_id}/ipConfigurations/ipconfig1").to_lowercase();
    let v = lab.op("GET", &format!("{vnet_id}?{NET}"), None);
    assert_eq!(
        ids(&v.body["properties"]["subnets"][0]["properties"]["ipConfigurations"]),
        std::slice::from_ref(&cfg_id)
    );
    let p = lab.op("GET", &format!("{pip_id}?{NET}"), None);
    assert_eq!(p.body["properties"]["ipConfiguration"]["id"].as_str().map(str::to_lowercase), Some(cfg_id.clone()));
    let g = lab.op("GET", &format!("{nsg_id}?{NET}"), None);
    assert_eq!(ids(&g.body["properties"]["networkInterfaces"]), [nic_id.to_lowercase()]);
    // A re-PUT of the network (as Set-AzVirtualNetwork sends it) keeps the subnet's list.
    let v2 = lab.op("PUT", &format!("{vnet_id}?{NET}"), Some(&vnet_body));
    assert_eq!(v2.status, 200, "{}", v2.body);
    assert_eq!(ids(&v2.body["properties"]["subnets"][0]["properties"]["ipConfigurations"]), [cfg_id]);

    // TestVirtualNetworkCRUD.json: address availability in a subnet.
    let check = |ip: &str| lab.op("GET", &format!("{vnet_id}/CheckIPAddressAvailability?ipAddress={ip}&{NET}"), None);
    assert_eq!(check("10.0.1.10").body, json!({"available": true}));
    let taken = check("10.0.1.4");
    assert_eq!(taken.body["available"], false, "{}", taken.body);
    assert_eq!(taken.body["availableIPAddresses"], json!(["10.0.1.5", "10.0.1.6", "10.0.1.7", "10.0.1.8", "10.0.1.9"]));
    assert_eq!(check("10.0.1.3").body["available"], false, "Azure keeps the first four addresses");
    assert_eq!(check("10.9.0.1").status, 400);

    // Deletes answer 202 with both headers (their Location ends 204, as Azure's
    // operationResults), and the back-references go with the NIC.
    let gone = delete_202(&lab, &nic_id);
    let done = lab.op("GET", &gone.header("location").unwrap_or_default(), None);
    assert_eq!(done.status, 204, "{}", done.body);
    let p = lab.op("GET", &format!("{pip_id}?{NET}"), None);
    assert!(p.body["properties"].get("ipConfiguration").is_none(), "{}", p.body);
    let v = lab.op("GET", &format!("{vnet_id}?{NET}"), None);
    assert!(v.body["properties"]["subnets"][0]["properties"].get("ipConfigurations").is_none(), "{}", v.body);
    assert_eq!(check("10.0.1.4").body["available"], true);
    delete_202(&lab, &pip_id);
    delete_202(&lab, &vnet_id);
    let g = lab.op("GET", &format!("{nsg_id}?{NET}"), None);
    assert!(g.body["properties"].get("subnets").is_none(), "{}", g.body);
    delete_202(&lab, &nsg_id);
    assert_eq!(lab.op("DELETE", &format!("{nsg_id}?{NET}"), None).status, 204, "nothing left to delete");
}

#[test]
fn a_storage_accounts_system_identity_is_a_principal_the_cloud_knows() {
    let lab = Lab::start();
    let rg = group(&lab, "st");
    let acct = format!("{rg}/providers/Microsoft.Storage/storageAccounts/idlabshapes1");
    let api = "api-version=2023-05-01";
    let r = lab.op(
        "PUT",
        &format!("{acct}?{api}"),
        Some(&json!({"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "location": "West US", "identity": {"type": "SystemAssigned"}})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let got = lab.op("GET", &format!("{acct}?{api}"), None);
    // TestNewAzureStorageAccount.json: `tags: {}` when none were set.
    assert_eq!(got.body["tags"], json!({}), "{}", got.body);
    let pid = got.body["identity"]["principalId"].as_str().expect("principalId").to_string();
    assert_eq!(got.body["identity"]["type"], "SystemAssigned");
    assert_eq!(got.body["identity"]["tenantId"].as_str(), Some(lab.cloud.info.tenant_id.as_str()));
    // The principal exists for RBAC: an assignment without principalType is accepted.
    let assign = |principal: &str| {
        let ra = format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4());
        let def = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
            lab.sub()
        );
        lab.op(
            "PUT",
            &format!("{ra}?api-version=2022-04-01"),
            Some(&json!({"properties": {"roleDefinitionId": def, "principalId": principal}})),
        )
    };
    assert_eq!(assign(&pid).status, 201, "{}", assign(&pid).body);
    assert_eq!(assign(&uuid::Uuid::new_v4().to_string()).code(), "PrincipalNotFound", "the check can fail");
    // A PUT without `identity` keeps it; the same principal stays.
    let again = lab.op(
        "PUT",
        &format!("{acct}?{api}"),
        Some(&json!({"sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "location": "westus"})),
    );
    assert!(again.status < 300, "{}", again.body);
    assert_eq!(
        lab.op("GET", &format!("{acct}?{api}"), None).body["identity"]["principalId"].as_str(),
        Some(pid.as_str())
    );
    // Tags set are kept as given.
    let tagged = lab.op("PATCH", &format!("{acct}?{api}"), Some(&json!({"tags": {"a": "b"}})));
    assert_eq!(tagged.body["tags"], json!({"a": "b"}), "{}", tagged.body);
    // Turning it off removes the principal.
    let off = lab.op("PATCH", &format!("{acct}?{api}"), Some(&json!({"identity": {"type": "None"}})));
    assert_eq!(off.body["identity"]["type"], "None", "{}", off.body);
    assert!(off.body["identity"].get("principalId").is_none());
    assert_eq!(assign(&pid).code(), "PrincipalNotFound");
    // Before 2016 the type was `properties.accountType` (TestVirtualMachineIdentityUpdate.json).
    let old_api = format!("{rg}/providers/Microsoft.Storage/storageAccounts/idlabshapes2015?api-version=2015-06-15");
    let r =
        lab.op("PUT", &old_api, Some(&json!({"location": "East US", "properties": {"accountType": "Standard_GRS"}})));
    assert_eq!(r.status, 202, "{}", r.body);
    let got = lab.op("GET", &old_api, None);
    assert_eq!(
        (got.body["properties"]["accountType"].as_str(), got.body["sku"]["name"].as_str()),
        (Some("Standard_GRS"), Some("Standard_GRS"))
    );
    assert_eq!(got.body["properties"]["secondaryLocation"], "westus", "{}", got.body);
    // A bad identity type is refused.
    let bad = lab.op("PATCH", &format!("{acct}?{api}"), Some(&json!({"identity": {"type": "Both"}})));
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn key_vault_answers_create_and_delete_with_200_as_recorded() {
    let lab = Lab::start();
    let rg = group(&lab, "kv");
    let vault = format!("{rg}/providers/Microsoft.KeyVault/vaults/idlab-shapes-kv");
    let api = "api-version=2019-09-01";
    // TestDeleteVault.json: the create answers 200 with `tags: {}`.
    let body = json!({"location": "West US", "properties": {"tenantId": lab.cloud.info.tenant_id, "sku": {"name": "standard", "family": "A"}, "accessPolicies": [], "enabledForDeployment": false, "enabledForDiskEncryption": false, "enabledForTemplateDeployment": false, "enableSoftDelete": true, "enablePurgeProtection": true, "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow"}}});
    let r = lab.op("PUT", &format!("{vault}?{api}"), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!({}));
    assert_eq!(lab.op("DELETE", &format!("{vault}?{api}"), None).status, 200);
    let gone = lab.op("GET", &format!("{vault}?{api}"), None);
    assert_eq!((gone.status, gone.code()), (404, "ResourceNotFound"));
    assert_eq!(lab.op("DELETE", &format!("{vault}?{api}"), None).status, 200, "a second delete is 200 too");
}

#[test]
fn sql_accepts_writes_with_the_operation_named_in_the_body() {
    let lab = Lab::start();
    let rg = group(&lab, "sql");
    let server = format!("{rg}/providers/Microsoft.Sql/servers/idlab-shapes-sql");
    let api = "api-version=2015-05-01-preview";
    // TestDatabaseCreate.json.
    let r = lab.op(
        "PUT",
        &format!("{server}?{api}"),
        Some(&json!({"properties": {"administratorLogin": "testusername", "administratorLoginPassword": "t357ingP@s5w0rd!"}, "location": "Southeast Asia"})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["operation"], "UpsertLogicalServer");
    assert!(r.body["startTime"].is_string());
    assert!(r.header("azure-asyncoperation").is_some() && r.header("location").is_some());
    let got = lab.op("GET", &format!("{server}?{api}"), None);
    assert_eq!((got.body["kind"].as_str(), got.body["properties"]["state"].as_str()), (Some("v12.0"), Some("Ready")));
    let db = format!("{server}/databases/ps9853?api-version=2017-10-01-preview");
    let d = lab.op(
        "PUT",
        &db,
        Some(&json!({"sku": {"name": "DW100", "tier": "DataWarehouse"}, "properties": {"collation": "SQL_Latin1_General_CP1_CI_AS", "maxSizeBytes": 268435456000u64, "readScale": "Disabled"}, "location": "southeastasia"})),
    );
    assert_eq!((d.status, d.body["operation"].as_str()), (202, Some("CreateLogicalDatabase")), "{}", d.body);
    let got = lab.op("GET", &db, None);
    assert_eq!(got.body["sku"], json!({"name": "DataWarehouse", "tier": "DataWarehouse", "capacity": 750}));
    assert_eq!(got.body["kind"], "v12.0,user,datawarehouse");
    assert_eq!(got.body["properties"]["currentServiceObjectiveName"], "DW100");
    // TestServerActiveDirectoryAdministratorCRUD.json: the admin's 202 also gives the
    // operation's id and its progress.
    let admin = format!("{server}/administrators/ActiveDirectory?api-version=2014-04-01");
    let sid = uuid::Uuid::new_v4().to_string();
    let missing = lab.op("GET", &admin, None);
    assert_eq!(
        (missing.status, missing.body["code"].as_str()),
        (404, Some("NotFound")),
        "the RP's own 2014 envelope: {}",
        missing.body
    );
    let newer = lab.op("GET", &format!("{server}/administrators/ActiveDirectory?api-version=2023-08-01"), None);
    assert_eq!((newer.status, newer.code()), (404, "ResourceNotFound"), "{}", newer.body);
    let a = lab.op(
        "PUT",
        &admin,
        Some(&json!({"properties": {"login": "testAADaccount", "sid": sid, "administratorType": "activeDirectory", "tenantId": lab.cloud.info.tenant_id}})),
    );
    assert_eq!(
        (a.status, a.body["operation"].as_str()),
        (202, Some("CreateActiveDirectoryAdministrator")),
        "{}",
        a.body
    );
    assert_eq!(a.body["percentComplete"], 0);
    let op_id = a.body["operationId"].as_str().unwrap_or_default().to_string();
    assert!(a.header("location").is_some_and(|l| l.contains(&op_id)), "{op_id}");
    // The Location poll ends with the admin, as administratorOperationResults does.
    let polled = lab.op("GET", &a.header("location").unwrap_or_default(), None);
    assert_eq!(
        (polled.status, polled.body["properties"]["login"].as_str()),
        (200, Some("testAADaccount")),
        "{}",
        polled.body
    );
    let list = lab.op("GET", &format!("{server}/administrators?api-version=2014-04-01"), None);
    assert_eq!(names(&list.body["value"]), ["ActiveDirectory"], "{}", list.body);
    assert_eq!(
        (list.body["value"][0]["location"].as_str(), &list.body["value"][0]["kind"]),
        (Some("southeastasia"), &Value::Null)
    );
    let newer = lab.op("GET", &format!("{server}/administrators/ActiveDirectory?api-version=2023-08-01"), None);
    assert!(newer.body.get("location").is_none(), "only 2014-04-01 shows a location: {}", newer.body);
    let a2 = lab.op("PUT", &admin, Some(&json!({"properties": {"login": "other", "sid": sid, "administratorType": "ActiveDirectory", "tenantId": lab.cloud.info.tenant_id}})));
    assert_eq!(a2.body["operation"], "UpdateActiveDirectoryAdministrator");
    let del = lab.op("DELETE", &admin, None);
    assert_eq!((del.status, del.body["operation"].as_str()), (202, Some("DropActiveDirectoryAdministrator")));
    let gone = lab.op("DELETE", &format!("{server}?{api}"), None);
    assert_eq!((gone.status, gone.body["operation"].as_str()), (202, Some("DropLogicalServer")));
    assert_eq!(lab.op("GET", &format!("{server}/administrators?api-version=2014-04-01"), None).status, 404);
    // At 2014-04-01 a server's create completed at once: 201 with the body.
    let old = lab.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.Sql/servers/idlab-shapes-2014?api-version=2014-04-01"),
        Some(&json!({"properties": {"version": "12.0", "administratorLogin": "testusername", "administratorLoginPassword": "t357ingP@s5w0rd!"}, "location": "North Europe"})),
    );
    assert_eq!((old.status, old.body["kind"].as_str()), (201, Some("v12.0")), "{}", old.body);
    assert!(!old.body.to_string().contains("t357ingP@s5w0rd!"), "the password is never echoed");
}

#[test]
fn data_lake_store_renames_concatenates_and_sets_permissions() {
    let lab = Lab::start();
    let arm = lab.operator.clone();
    let (id, base) = store(&lab, &arm, "adls", "idlabshapes");
    // TestAdlsAccount.json: the fields the 2016-11-01 account shows.
    let got = lab.op("GET", &format!("{id}?api-version=2016-11-01"), None);
    assert_eq!(got.body["properties"]["firewallAllowDataLakeAnalytics"], "Disabled");
    assert_eq!(got.body["properties"]["dataLakePerformanceTierState"], "Disabled");
    // A service-managed key cannot switch to a vault's: 400 InvalidOperation, as recorded.
    let kv = lab.op("POST", &format!("{id}/enableKeyVault?api-version=2016-11-01"), None);
    assert_eq!((kv.status, kv.code()), (400, "InvalidOperation"), "{}", kv.body);
    let c = client(&lab);
    let t = lab.operator_token_for(DATALAKE_SCOPE);
    let json_of = |r: &crate::local_datalake::Hdfs| serde_json::from_slice::<Value>(&r.bytes).unwrap_or(Value::Null);
    // TestAdlsFileSystemPermissions.json: a new root lists its owning group's entry.
    let acl = hdfs(&lab, &c, &t, "GET", &format!("{base}/?op=GETACLSTATUS&api-version=2016-11-01"), b"");
    assert_eq!(json_of(&acl)["AclStatus"]["entries"], json!(["group::rwx"]));
    assert_eq!(json_of(&acl)["AclStatus"]["permission"], "770");
    let r = hdfs(&lab, &c, &t, "PUT", &format!("{base}/?permission=777&op=SETPERMISSION&api-version=2016-11-01"), b"");
    assert_eq!(r.status, 200);
    let acl = hdfs(&lab, &c, &t, "GET", &format!("{base}/?op=GETACLSTATUS"), b"");
    assert_eq!(json_of(&acl)["AclStatus"]["permission"], "777");
    // TestAdlsFileSystem.json: two files concatenated, renamed, their folder renamed.
    for (name, data) in [("emptyfile.txt", &b""[..]), ("contentfile.txt", &b"some content"[..])] {
        let r = hdfs(
            &lab,
            &c,
            &t,
            "PUT",
            &format!("{base}/adlspstestfolder/{name}?overwrite=false&write=true&op=CREATE"),
            data,
        );
        assert_eq!(r.status, 201, "{name}");
    }
    let ext = base.replace("/webhdfs/v1", "/WebHdfsExt");
    let r = hdfs(
        &lab,
        &c,
        &t,
        "PUT",
        &format!(
            "{ext}/adlspstestfolder%2Fcontentfile.txt?expiryOption=Absolute&expireTime=1505346746000&op=SETEXPIRY&api-version=2016-11-01"
        ),
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let r = hdfs(
        &lab,
        &c,
        &t,
        "PUT",
        &format!("{ext}/adlspstestfolder/contentfile.txt?expiryOption=Sometime&op=SETEXPIRY"),
        b"",
    );
    assert_eq!(r.status, 400);
    let r = hdfs(
        &lab,
        &c,
        &t,
        "POST",
        &format!(
            "{base}/adlspstestfolder%2Fconcatfile.txt?deleteSourceDirectory=false&op=MSCONCAT&api-version=2016-11-01"
        ),
        b"sources=adlspstestfolder/emptyfile.txt,adlspstestfolder/contentfile.txt",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let status = hdfs(&lab, &c, &t, "GET", &format!("{base}/adlspstestfolder/contentfile.txt?op=GETFILESTATUS"), b"");
    assert_eq!(status.status, 404, "the sources are gone");
    let r = hdfs(
        &lab,
        &c,
        &t,
        "PUT",
        &format!("{base}/adlspstestfolder%2Fconcatfile.txt?destination=adlspstestfolder%2Fmovefile.txt&op=RENAME"),
        b"",
    );
    assert_eq!(json_of(&r), json!({"boolean": true}));
    let r =
        hdfs(&lab, &c, &t, "PUT", &format!("{base}/adlspstestfolder?destination=adlspstestmovefolder&op=RENAME"), b"");
    assert_eq!(json_of(&r), json!({"boolean": true}));
    let r = hdfs(&lab, &c, &t, "GET", &format!("{base}/adlspstestmovefolder/movefile.txt?op=OPEN&read=true"), b"");
    assert_eq!((r.status, r.bytes.as_slice()), (200, &b"some content"[..]));
    let old = hdfs(&lab, &c, &t, "GET", &format!("{base}/adlspstestfolder?op=GETFILESTATUS"), b"");
    assert_eq!(old.status, 404);
    // A rename onto an existing path is `false`, as WebHDFS answers.
    let r = hdfs(&lab, &c, &t, "PUT", &format!("{base}/?op=MKDIRS"), b"");
    assert_eq!(r.status, 200);
    hdfs(&lab, &c, &t, "PUT", &format!("{base}/other?op=MKDIRS"), b"");
    let r = hdfs(&lab, &c, &t, "PUT", &format!("{base}/other?destination=adlspstestmovefolder&op=RENAME"), b"");
    assert_eq!(json_of(&r), json!({"boolean": false}));
    let r = hdfs(
        &lab,
        &c,
        &t,
        "DELETE",
        &format!("{base}/adlspstestmovefolder%2Fmovefile.txt?recursive=false&op=DELETE"),
        b"",
    );
    assert_eq!(json_of(&r), json!({"boolean": true}));
}
